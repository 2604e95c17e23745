// A real OpenID Connect provider (npm's certified oidc-provider) for the single sign-on tests,
// on loopback: one client, `sentry`, whose users sign in with any password (the provider's
// development login pages), their email being what they type as the login.
//
//   node provider.mjs REDIRECT_URI
//
// listens on a free loopback port and prints `ready PORT`. `GET /test/mode?set=MODE` makes the next ID tokens the token
// endpoint hands out wrong on purpose, to see the relying party refuse them: `audience` (for
// another client), `expired`, `tampered` (a claim changed after signing); `normal` undoes it.
import http from 'node:http';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const [redirectUri] = process.argv.slice(2);
// The port first (the system picks a free one, so no other test can take it meanwhile): the
// issuer URL names it.
const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await jose.exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
let mode = 'normal';

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'sentry',
    client_secret: 'sentry-test-secret',
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  jwks: { keys: [jwk] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: id, email_verified: true }),
  }),
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  pkce: { required: () => true },
  // The email goes in the ID token itself (as Google's and most providers' do), not only in
  // the userinfo answer.
  conformIdTokenClaims: false,
  cookies: { keys: ['sentry-tests'] },
});

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

provider.use(async (ctx, next) => {
  if (ctx.path === '/test/mode') {
    mode = ctx.query.set || 'normal';
    ctx.body = mode;
    return;
  }
  await next();
  if (ctx.path !== '/token' || ctx.status !== 200 || mode === 'normal' || !ctx.body?.id_token) return;
  const [header, , signature] = ctx.body.id_token.split('.');
  const claims = jose.decodeJwt(ctx.body.id_token);
  const now = Math.floor(Date.now() / 1000);
  if (mode === 'tampered') {
    ctx.body.id_token = `${header}.${b64({ ...claims, email: 'intruder@evil.example' })}.${signature}`;
  } else {
    const changed = mode === 'audience' ? { ...claims, aud: 'another-client' } : { ...claims, iat: now - 7200, exp: now - 3600 };
    ctx.body.id_token = await new jose.SignJWT(changed).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).sign(privateKey);
  }
});

server.on('request', provider.callback());
console.log(`ready ${port}`);
