//! The REST API against the real `sentry-cli` (installed by scripts/test.sh into `.venv`) with
//! a token from `sentry token create`: info, organisations, projects, releases, deploys,
//! issues, `send-event`, and source maps — a bundle built here by esbuild (tests/sourcemaps),
//! its map uploaded by `sentry-cli`, throwing inside `@sentry/node`: the stored event shows
//! the original file, line, function and source. And bad uploads: a chunk whose SHA-1 does not
//! match, an assembly of missing chunks, a 1 GB body, a map that is not JSON, a zip bomb; the
//! server's memory while it takes a gzip bomb, 512 MiB of chunks and a 40 MB bundle; uploads past
//! the few read at once. One issue read, changed (`statusDetails`) and deleted.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use crate::harness::{show_output, workspace_root, Server};

const SCOPES: &str = "org:read project:read project:releases event:read event:write member:read";

/// `SENTRY_TEST_SENTRY_CLI`, else `sentry-cli` beside the test venv's Python.
fn sentry_cli_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SENTRY_TEST_SENTRY_CLI") {
        return PathBuf::from(p);
    }
    let python = crate::harness::python();
    let p = python.parent().unwrap().join("sentry-cli");
    assert!(p.exists(), "{} does not exist: run ./scripts/test.sh, which installs sentry-cli", p.display());
    p
}

/// A server, an organisation token, and `sentry-cli` set up for them in a directory of its own.
struct Cli {
    server: Server,
    token: String,
    home: tempfile::TempDir,
}

impl Cli {
    fn start() -> Cli {
        let server = Server::start();
        let token = server.cli_ok(&["token", "create", "--org", "default", "--scopes", SCOPES]).trim().to_string();
        Cli { server, token, home: tempfile::tempdir().unwrap() }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(sentry_cli_path());
        cmd.current_dir(self.home.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("SENTRY_URL", self.server.base_url())
            .env("SENTRY_AUTH_TOKEN", &self.token)
            .env("SENTRY_ORG", "default")
            .env("SENTRY_PROJECT", "default")
            .env("SENTRY_LOAD_DOTENV", "0")
            .env("SENTRY_DISABLE_UPDATE_CHECK", "true");
        cmd
    }

    /// Runs `sentry-cli ARGS`; its stdout and stderr, after checking it succeeded.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, &[]);
        assert!(out.status.success(), "sentry-cli {args:?} failed\n{}", show_output(&out));
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("running sentry-cli")
    }

    fn api(&self, method: &str, path: &str, body: &[u8]) -> crate::harness::Response {
        let auth = format!("Bearer {}", self.token);
        self.server.request(method, path, &[("Authorization", &auth), ("Content-Type", "application/json")], body)
    }

    fn get(&self, path: &str) -> Value {
        let r = self.api("GET", path, b"");
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    fn dsn(&self) -> String {
        self.server.cli_json(&["project", "list", "--json"])[0]["dsn"].as_str().unwrap().to_string()
    }
}

#[test]
fn sentry_cli_manages_releases_deploys_and_issues() {
    let cli = Cli::start();
    let info = cli.ok(&["info"]);
    assert!(info.contains("Auth Token") && info.contains("project:releases"), "{info}");
    let orgs = cli.ok(&["organizations", "list"]);
    assert!(orgs.contains("| default ") && orgs.contains("Default"), "{orgs}");
    assert!(cli.ok(&["projects", "list"]).contains("| default "));

    assert!(cli.ok(&["releases", "new", "1.0.0"]).contains("Created release 1.0.0"));
    let r = cli.get("/api/0/organizations/default/releases/1.0.0/");
    assert_eq!((r["projects"][0]["slug"].clone(), r["dateReleased"].clone()), (json!("default"), Value::Null));
    assert!(cli.ok(&["releases", "new", "1.0.0"]).contains("1.0.0"), "a second `new` of a release is no error");
    assert!(cli.ok(&["releases", "list"]).contains("1.0.0"));
    assert!(cli.ok(&["releases", "finalize", "1.0.0"]).contains("Finalized release 1.0.0"));
    assert!(cli.get("/api/0/organizations/default/releases/1.0.0/")["dateReleased"].as_str().unwrap().ends_with('Z'));
    assert!(cli.ok(&["deploys", "new", "-r", "1.0.0", "-e", "production", "-n", "friday"]).contains("production"));
    let deploys = cli.get("/api/0/organizations/default/releases/1.0.0/deploys/");
    assert_eq!((deploys[0]["environment"].clone(), deploys[0]["name"].clone()), (json!("production"), json!("friday")));
    assert!(cli.ok(&["deploys", "list", "-r", "1.0.0"]).contains("friday"));

    let dsn = cli.dsn();
    let sent = cli.run(&["send-event", "-m", "hello from the command line", "-r", "1.0.0"], &[("SENTRY_DSN", &dsn)]);
    assert!(sent.status.success(), "{}", show_output(&sent));
    let sent = cli.run(&["send-event", "-m", "a second problem"], &[("SENTRY_DSN", &dsn)]);
    assert!(sent.status.success(), "{}", show_output(&sent));
    let groups = cli.server.groups("default");
    assert_eq!(groups.len(), 2, "{groups:?}");
    let list = cli.ok(&["issues", "list"]);
    assert!(list.contains("hello from the command line") && list.contains("a second problem") && list.contains("unresolved"), "{list}");
    let r = cli.get("/api/0/organizations/default/releases/1.0.0/");
    assert_eq!(r["newGroups"], 1, "{r}");
    assert!(r["lastEvent"].as_str().is_some_and(|t| t.ends_with('Z')), "{r}");
    let id = |title: &str| groups.iter().find(|g| g["title"] == title).unwrap()["id"].as_u64().unwrap().to_string();
    let (first, second) = (id("hello from the command line"), id("a second problem"));
    let status = |id: &str| cli.get(&format!("/api/0/organizations/default/issues/{id}/"))["status"].as_str().unwrap().to_string();

    cli.ok(&["issues", "resolve", "-i", &first]);
    assert_eq!((status(&first), status(&second)), ("resolved".into(), "unresolved".into()));
    cli.ok(&["issues", "mute", "-i", &second]);
    assert_eq!(status(&second), "ignored");
    cli.ok(&["issues", "unresolve", "-i", &first]);
    assert_eq!(status(&first), "unresolved");
    let list = cli.ok(&["issues", "list"]);
    assert!(list.lines().any(|l| l.contains("a second problem") && l.contains("ignored")), "{list}");
    // `--all` is every unresolved issue (Sentry's default query): the ignored one stays so.
    cli.ok(&["issues", "resolve", "-a"]);
    assert_eq!((status(&first), status(&second)), ("resolved".into(), "ignored".into()));
    cli.ok(&["issues", "unresolve", "-i", &first]);
    // The same through the API: search syntax, statsPeriod, events.
    let found = cli.get("/api/0/projects/default/default/issues/?query=is:unresolved%20hello&statsPeriod=24h");
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["count"], "1");
    let latest = cli.get(&format!("/api/0/organizations/default/issues/{first}/events/latest/"));
    assert_eq!(latest["message"], "hello from the command line");
    assert!(latest["tags"].as_array().unwrap().iter().any(|t| t["key"] == "release" && t["value"] == "1.0.0"), "{latest}");
    let by_id = cli.get(&format!("/api/0/projects/default/default/events/{}/", latest["eventID"].as_str().unwrap()));
    assert_eq!(by_id["groupID"], first.as_str());
    assert_eq!(cli.api("GET", "/api/0/projects/default/default/issues/?statsPeriod=often", b"").status, 400);

    // The release's pages: the list, and the release with its deploy, events and new issue.
    let session = cli.server.admin_session();
    let list = cli.server.get_as(&session, "/p/default/releases/").text();
    assert!(list.contains("/p/default/releases/1.0.0/"), "{list}");
    let page = cli.server.get_as(&session, "/p/default/releases/1.0.0/").text();
    assert!(page.contains("friday") && page.contains("production"), "the deploy: {page}");
    assert!(page.contains("hello from the command line"), "the issue the release brought: {page}");
    let issue = cli.server.get_as(&session, &format!("/p/default/issues/{first}/")).text();
    assert!(issue.contains("first release") && issue.contains("/p/default/releases/1.0.0/"), "{issue}");

    // The OpenAPI document names every route.
    let doc = cli.server.get("/api/0/openapi.json").json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/0/organizations/{org}/releases/"]["post"]["summary"].is_string(), "{doc}");

    // Releases are deleted with their deploys.
    assert!(cli.ok(&["releases", "delete", "1.0.0"]).contains("1.0.0"));
    assert_eq!(cli.api("GET", "/api/0/organizations/default/releases/1.0.0/", b"").status, 404);
}

/// `tests/sourcemaps`: esbuild and @sentry/node, installed by scripts/test.sh.
fn sourcemaps_dir() -> PathBuf {
    let dir = workspace_root().join("tests/sourcemaps");
    assert!(
        dir.join("node_modules/esbuild").is_dir() && dir.join("node_modules/@sentry/node").is_dir(),
        "esbuild and @sentry/node are not installed in {}: run scripts/test.sh (or npm ci --prefix tests/sourcemaps)",
        dir.display()
    );
    dir
}

/// Bundles and minifies tests/sourcemaps/app into `out/app.min.js`, with a source map.
fn bundle(out: &Path) {
    let dir = sourcemaps_dir();
    let res = Command::new(dir.join("node_modules/.bin/esbuild"))
        .arg(dir.join("app/src/main.js"))
        .args(["--bundle", "--minify", "--sourcemap", "--platform=node", "--external:@sentry/node"])
        .arg(format!("--outfile={}", out.join("app.min.js").display()))
        .output()
        .expect("running esbuild");
    assert!(res.status.success(), "{}", show_output(&res));
}

/// Runs a bundle: it throws, and @sentry/node sends the error.
fn run_bundle(bundle: &Path, dsn: &str, release: Option<&str>) {
    let node = std::env::var("SENTRY_TEST_NODE").unwrap_or_else(|_| "node".into());
    let mut cmd = Command::new(node);
    cmd.arg(bundle.join("app.min.js")).env("SENTRY_DSN", dsn).env("NODE_PATH", sourcemaps_dir().join("node_modules"));
    if let Some(r) = release {
        cmd.env("SENTRY_RELEASE", r);
    }
    let out = cmd.output().expect("running node");
    assert!(out.status.success(), "{}", show_output(&out));
}

/// The newest event's JSON as stored, with its group as `group`, once `count` events are.
fn newest_event(cli: &Cli, count: usize) -> Value {
    let groups = cli.server.groups("default");
    let total: u64 = groups.iter().map(|g| g["count"].as_u64().unwrap()).sum();
    assert_eq!(total as usize, count, "{groups:?}");
    let newest = groups.iter().max_by_key(|g| g["last_seen"].as_str().unwrap().to_string()).unwrap();
    let id = newest["id"].as_u64().unwrap();
    let e = cli.get(&format!("/api/0/organizations/default/issues/{id}/events/latest/"));
    let raw = cli.api("GET", &format!("/api/0/projects/default/default/events/{}/json/", e["eventID"].as_str().unwrap()), b"");
    assert_eq!(raw.status, 200);
    let mut raw = raw.json();
    raw["group"] = newest.clone();
    raw
}

fn frame<'a>(event: &'a Value, file: &str) -> &'a Value {
    let frames = event["exception"]["values"][0]["stacktrace"]["frames"].as_array().unwrap();
    frames.iter().find(|f| f["filename"].as_str().is_some_and(|n| n.ends_with(file))).unwrap_or_else(|| panic!("no frame of {file} in {event}"))
}

#[test]
fn source_maps_uploaded_by_sentry_cli_resolve_a_minified_bundle() {
    let cli = Cli::start();
    let dsn = cli.dsn();
    let build = tempfile::tempdir().unwrap();

    // Debug ids: inject, upload, throw.
    let with_ids = build.path().join("with-ids");
    bundle(&with_ids);
    let out = cli.ok(&["sourcemaps", "inject", with_ids.to_str().unwrap()]);
    assert!(out.contains("debug id"), "{out}");
    let out = cli.ok(&["sourcemaps", "upload", with_ids.to_str().unwrap()]);
    assert!(out.contains("~/app.min.js.map"), "{out}");
    run_bundle(&with_ids, &dsn, None);
    let event = newest_event(&cli, 1);
    let f = frame(&event, "cart.js");
    assert_eq!((f["function"].as_str(), f["lineno"].as_u64()), (Some("computeTotal"), Some(5)), "{f}");
    assert_eq!(f["context_line"].as_str().map(str::trim), Some("sum += item.price.amount;"));
    // Each function is named as its caller's call site names it.
    let main_js: Vec<(u64, &str)> = event["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["filename"].as_str().is_some_and(|n| n.ends_with("main.js")))
        .map(|f| (f["lineno"].as_u64().unwrap(), f["function"].as_str().unwrap_or("")))
        .collect();
    assert!(main_js.contains(&(5, "checkout")) && main_js.contains(&(11, "main")), "{main_js:?}");
    assert!(f["pre_context"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().contains("let sum = 0;")), "{f}");
    let raw = event["exception"]["values"][0]["raw_stacktrace"]["frames"].as_array().unwrap();
    assert!(raw.iter().any(|f| f["filename"].as_str().is_some_and(|p| p.ends_with("app.min.js"))), "the minified frames are kept");
    assert!(event.get("errors").is_none_or(|e| e.as_array().unwrap().is_empty()), "{}", event["errors"]);
    assert!(event["group"]["culprit"].as_str().unwrap().contains("computeTotal"), "grouped by resolved frames: {}", event["group"]);

    // The event page shows the original frames with their source, and the minified ones on request.
    let session = cli.server.admin_session();
    let page = |event: &Value| {
        let href = format!("/p/default/issues/{}/events/{}/", event["group"]["id"], event["event_id"].as_str().unwrap());
        let r = cli.server.get_as(&session, &href);
        assert_eq!(r.status, 200, "{href}");
        r.text()
    };
    let html = page(&event);
    assert!(html.contains("computeTotal") && html.contains("sum += item.price.amount;"), "{html}");
    assert!(html.contains("Minified frames") && html.contains("app.min.js"), "{html}");

    // No map uploaded for this build: the event says why.
    let no_map = build.path().join("no-map");
    bundle(&no_map);
    std::fs::write(no_map.join("app.min.js.map"), b"").unwrap();
    run_bundle(&no_map, &dsn, Some("2.0.0"));
    let event = newest_event(&cli, 2);
    let errors = event["errors"].as_array().unwrap_or_else(|| panic!("{event}"));
    assert!(errors[0]["reason"].as_str().unwrap().contains("source map not found"), "{errors:?}");
    assert!(frame(&event, "app.min.js")["lineno"].as_u64().is_some(), "the frame stays minified");
    assert!(page(&event).contains("source map not found"), "the page says why");

    // The older upload: by release and file name.
    let legacy = build.path().join("legacy");
    bundle(&legacy);
    let prefix = format!("~{}", legacy.display());
    cli.ok(&["releases", "new", "3.0.0"]);
    let out = cli.ok(&["sourcemaps", "upload", "--release", "3.0.0", "--url-prefix", &prefix, legacy.to_str().unwrap()]);
    assert!(out.contains("app.min.js.map"), "{out}");
    run_bundle(&legacy, &dsn, Some("3.0.0"));
    let event = newest_event(&cli, 3);
    let f = frame(&event, "cart.js");
    assert_eq!((f["function"].as_str(), f["lineno"].as_u64()), (Some("computeTotal"), Some(5)), "{event}");
    let files = cli.get("/api/0/organizations/default/releases/3.0.0/files/");
    assert!(files.as_array().unwrap().iter().any(|f| f["name"].as_str().unwrap().ends_with("app.min.js.map")), "{files}");
}

fn sha1_hex(data: &[u8]) -> String {
    Sha1::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A multipart body of chunks (field `file`, file name given).
fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    multipart_as("file", parts)
}

/// A multipart body of chunks in the form field `field` (`file`, or `file_gzip`).
fn multipart_as(field: &str, parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----chunk-boundary-7d1";
    let mut body = Vec::new();
    for (name, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Cli {
    fn upload_chunks(&self, parts: &[(&str, &[u8])]) -> crate::harness::Response {
        let (ty, body) = multipart(parts);
        let auth = format!("Bearer {}", self.token);
        self.server.request("POST", "/api/0/organizations/default/chunk-upload/", &[("Authorization", &auth), ("Content-Type", &ty)], &body)
    }

    /// Uploads `file` as one chunk and assembles it as an artifact bundle.
    fn upload_bundle(&self, file: &[u8]) -> Value {
        let sum = sha1_hex(file);
        assert_eq!(self.upload_chunks(&[(&sum, file)]).status, 200);
        let body = json!({"checksum": sum, "chunks": [sum], "projects": ["default"]}).to_string();
        let r = self.api("POST", "/api/0/organizations/default/artifactbundle/assemble/", body.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }
}

/// An artifact bundle of (path in the archive, url, type, debug id, content).
fn artifact_bundle(files: &[(&str, &str, &str, &str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut manifest = serde_json::Map::new();
    for (path, url, ty, id, data) in files {
        manifest.insert(path.to_string(), json!({"url": url, "type": ty, "headers": {"debug-id": id}}));
        zip.start_file(*path, opts).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.start_file("manifest.json", opts).unwrap();
    zip.write_all(json!({"files": manifest}).to_string().as_bytes()).unwrap();
    zip.finish().unwrap().into_inner()
}

#[test]
fn bad_uploads_are_refused_with_reasons_and_lose_nothing_else() {
    let cli = Cli::start();
    // A chunk whose content does not have the SHA-1 it is named by.
    let r = cli.upload_chunks(&[(&sha1_hex(b"what was meant"), b"what arrived")]);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("SHA-1"), "{}", r.text());
    // An assembly of chunks never uploaded names them.
    let (have, missing) = (sha1_hex(b"have"), sha1_hex(b"missing"));
    assert_eq!(cli.upload_chunks(&[(&have, b"have")]).status, 200);
    let body = json!({"checksum": sha1_hex(b"havemissing"), "chunks": [have, missing]}).to_string();
    let r = cli.api("POST", "/api/0/organizations/default/artifactbundle/assemble/", body.as_bytes()).json();
    assert_eq!((r["state"].clone(), r["missingChunks"].clone()), (json!("not_found"), json!([missing])));
    // Chunks that do not add up to the checksum.
    let body = json!({"checksum": sha1_hex(b"other"), "chunks": [have]}).to_string();
    let r = cli.api("POST", "/api/0/organizations/default/artifactbundle/assemble/", body.as_bytes()).json();
    assert_eq!(r["state"], "error");
    // A 1 GB upload is refused at its limit, before it is read.
    let mut s = TcpStream::connect(cli.server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /api/0/organizations/default/chunk-upload/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1073741824\r\n\r\n--b\r\n",
        cli.token
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(&vec![b'x'; 1 << 20]);
    let mut answer = [0u8; 12];
    s.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413", "{}", String::from_utf8_lossy(&answer));
    // A zip bomb: 300 MiB of zeros in a few hundred KiB.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(true);
    zip.start_file("manifest.json", opts).unwrap();
    zip.write_all(br#"{"files": {"bomb.js": {"url": "~/bomb.js", "type": "minified_source"}}}"#).unwrap();
    zip.start_file("bomb.js", opts).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..300 {
        zip.write_all(&zeros).unwrap();
    }
    let bomb = zip.finish().unwrap().into_inner();
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    let r = cli.upload_bundle(&bomb);
    assert_eq!(r["state"], "error");
    assert!(r["detail"].as_str().unwrap().contains("unpacks to more than"), "{r}");
    // A map that is not JSON: the event says so.
    let id = "4f9a2b1c-0d3e-4f50-8a6b-7c8d9e0f1a2b";
    let bundle = artifact_bundle(&[
        ("app.min.js", "~/app.min.js", "minified_source", id, b"function a(){throw new Error('x')}a();"),
        ("app.min.js.map", "~/app.min.js.map", "source_map", id, b"this is not json"),
    ]);
    assert_eq!(cli.upload_bundle(&bundle)["state"], "ok");
    let project = cli.server.cli_json(&["project", "list", "--json"])[0].clone();
    let event = json!({
        "event_id": "0123456789abcdef0123456789abcdef",
        "platform": "javascript",
        "exception": {"values": [{"type": "Error", "value": "x", "stacktrace": {"frames": [
            {"abs_path": "http://example.com/app.min.js", "filename": "app.min.js", "function": "a", "lineno": 1, "colno": 20, "in_app": true}
        ]}}]},
        "debug_meta": {"images": [{"type": "sourcemap", "code_file": "http://example.com/app.min.js", "debug_id": id}]},
    });
    let dsn = project["dsn"].as_str().unwrap();
    let key = dsn.split("://").nth(1).unwrap().split('@').next().unwrap();
    let auth = format!("Sentry sentry_key={key}, sentry_version=7");
    let r = cli.server.post(&format!("/api/{}/store/", project["id"]), &[("X-Sentry-Auth", &auth), ("Content-Type", "application/json")], event.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let stored = cli.get("/api/0/projects/default/default/events/0123456789abcdef0123456789abcdef/");
    let reason = stored["errors"][0]["reason"].as_str().unwrap_or_else(|| panic!("{stored}"));
    assert!(reason.contains("is not valid"), "{reason}");
    // Nothing else was lost: the server serves, the uploaded minified file is kept.
    assert_eq!(cli.server.get("/healthz").status, 200);
    assert_eq!(stored["title"], "Error: x");
}

/// The server's resident memory now, and at its peak since [`reset_peak`], in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()).map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts measuring the server's peak memory afresh.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), b"5").unwrap();
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

const MIB: u64 = 1 << 20;

#[test]
fn a_gzip_bomb_is_refused_and_chunks_are_stored_one_at_a_time() {
    let cli = Cli::start();
    let pid = cli.server.pid().unwrap();
    let auth = format!("Bearer {}", cli.token);
    let post = |ty: &str, body: &[u8]| {
        crate::harness::try_request(
            cli.server.addr(),
            "POST",
            "/api/0/organizations/default/chunk-upload/",
            &[("Authorization", &auth), ("Content-Type", ty)],
            body,
            Duration::from_secs(120),
        )
        .unwrap()
    };
    // A 32 MiB request of 64 gzip parts, each 512 MiB of zeros: 32 GiB once decompressed.
    let zeros = vec![0u8; 512 << 20];
    let (bomb, name) = (gzip(&zeros), sha1_hex(&zeros));
    drop(zeros);
    let parts: Vec<(&str, &[u8])> = (0..64).map(|_| (name.as_str(), bomb.as_slice())).collect();
    let (ty, body) = multipart_as("file_gzip", &parts);
    assert!(body.len() as u64 > 30 * MIB && body.len() as u64 <= 32 * MIB, "{}", body.len());
    let before = rss(pid).0;
    reset_peak(pid);
    let r = post(&ty, &body);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("a chunk may be at most 8388608 bytes"), "{}", r.text());
    let (_, peak) = rss(pid);
    eprintln!("gzip bomb: RSS {} MiB before, peak {} MiB", before / MIB, peak / MIB);
    assert!(peak < before + 64 * MIB, "the server grew from {before} to {peak} bytes for a refused bomb");
    drop((body, parts));

    // 64 real chunks of 8 MiB (512 MiB) in a request of a few hundred KiB: all stored, never all held.
    let chunks: Vec<(String, Vec<u8>)> = (0..64u8)
        .map(|i| {
            let mut data = vec![0u8; 8 << 20];
            data[0] = i;
            (sha1_hex(&data), gzip(&data))
        })
        .collect();
    let names: Vec<String> = chunks.iter().map(|(n, _)| n.clone()).collect();
    let parts: Vec<(&str, &[u8])> = chunks.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let (ty, body) = multipart_as("file_gzip", &parts);
    assert!(body.len() < 2 << 20, "{}", body.len());
    let before = rss(pid).0;
    reset_peak(pid);
    let r = post(&ty, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, peak) = rss(pid);
    eprintln!("64 chunks of 8 MiB: RSS {} MiB before, peak {} MiB", before / MIB, peak / MIB);
    assert!(peak < before + 160 * MIB, "the server grew from {before} to {peak} bytes storing 512 MiB of chunks");
    let ask = json!({"checksum": sha1_hex(b"x"), "chunks": names}).to_string();
    let r = cli.api("POST", "/api/0/organizations/default/artifactbundle/assemble/", ask.as_bytes()).json();
    assert_eq!((r["state"].clone(), r["missingChunks"].clone()), (json!("error"), json!([])), "every chunk is there: {r}");
    assert!(r["detail"].as_str().unwrap().contains("larger than"), "{r}");

    // Seven of them put together (56 MiB) go through a temporary file, not memory.
    let mut hash = Sha1::new();
    for i in 0..7u8 {
        let mut data = vec![0u8; 8 << 20];
        data[0] = i;
        hash.update(&data);
    }
    let sum: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let before = rss(pid).0;
    reset_peak(pid);
    let ask = json!({"checksum": sum, "chunks": &names[..7]}).to_string();
    let r = cli.api("POST", "/api/0/organizations/default/artifactbundle/assemble/", ask.as_bytes()).json();
    assert_eq!(r["state"], "error", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("not a zip archive"), "{r}");
    let (_, peak) = rss(pid);
    eprintln!("assembling 56 MiB: RSS {} MiB before, peak {} MiB", before / MIB, peak / MIB);
    assert!(peak < before + 48 * MIB, "the server grew from {before} to {peak} bytes assembling 56 MiB");
    assert_eq!(cli.server.get("/healthz").status, 200);
}

/// A 32-bit random number generator for content that does not compress (xorshift).
fn noise(seed: u32, len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            ALPHABET[(x & 63) as usize] as char
        })
        .collect()
}

#[test]
fn a_large_bundle_uploaded_by_sentry_cli_in_several_chunks_still_resolves() {
    let cli = Cli::start();
    let pid = cli.server.pid().unwrap();
    let dsn = cli.dsn();
    let build = tempfile::tempdir().unwrap();
    let dir = build.path().join("big");
    bundle(&dir);
    // Four more files with 10 MB maps each (their sources do not compress much): about 40 MB.
    for i in 0..4 {
        std::fs::write(dir.join(format!("vendor{i}.js")), format!("function vendor{i}(){{}}\n//# sourceMappingURL=vendor{i}.js.map\n")).unwrap();
        let map = json!({"version": 3, "file": format!("vendor{i}.js"), "sources": [format!("vendor{i}.src.js")], "sourcesContent": [noise(i + 1, 10_000_000)], "names": [], "mappings": "AAAA"});
        std::fs::write(dir.join(format!("vendor{i}.js.map")), map.to_string()).unwrap();
    }
    cli.ok(&["sourcemaps", "inject", dir.to_str().unwrap()]);
    let before = rss(pid).0;
    reset_peak(pid);
    let out = cli.ok(&["sourcemaps", "upload", dir.to_str().unwrap()]);
    let (_, peak) = rss(pid);
    eprintln!("sentry-cli upload of about 40 MB of maps: RSS {} MiB before, peak {} MiB", before / MIB, peak / MIB);
    assert!(out.contains("~/app.min.js.map") && out.contains("~/vendor3.js.map"), "{out}");
    assert!(peak < before + 512 * MIB, "the server grew from {before} to {peak} bytes");
    run_bundle(&dir, &dsn, None);
    let event = newest_event(&cli, 1);
    let f = frame(&event, "cart.js");
    assert_eq!((f["function"].as_str(), f["lineno"].as_u64()), (Some("computeTotal"), Some(5)), "{f}");
}

impl Cli {
    /// Sends a message event and waits for its issue: its id.
    fn issue_of_message(&self, message: &str) -> u64 {
        self.server.cli_ok(&["capture", "Message", "--dsn", &self.dsn(), "--message", message]);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(g) = self.server.groups("default").iter().find(|g| g["title"] == message) {
                return g["id"].as_u64().unwrap();
            }
            assert!(std::time::Instant::now() < deadline, "no issue {message:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn put(&self, path: &str, body: Value) -> crate::harness::Response {
        self.api("PUT", path, body.to_string().as_bytes())
    }

    /// The status of an issue, as the API tells it.
    fn status(&self, id: u64) -> String {
        self.get(&format!("/api/0/issues/{id}/"))["status"].as_str().unwrap().to_string()
    }
}

#[test]
fn one_issue_is_read_changed_and_deleted_in_sentrys_shapes() {
    let cli = Cli::start();
    let (first, second) = (cli.issue_of_message("checkout failed"), cli.issue_of_message("payment declined"));
    let (own, org) = (format!("/api/0/issues/{first}/"), format!("/api/0/organizations/default/issues/{first}/"));
    let issue = cli.get(&own);
    assert_eq!((issue["id"].as_str(), issue["status"].as_str(), issue["project"]["slug"].as_str()), (Some(&*first.to_string()), Some("unresolved"), Some("default")), "{issue}");
    assert_eq!(cli.get(&org), issue, "both routes show the same issue");

    // Resolved in a release: the answer is the issue, with Sentry's statusDetails.
    let r = cli.put(&own, json!({"status": "resolved", "statusDetails": {"inRelease": "1.2"}}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!((r.json()["status"].clone(), r.json()["statusDetails"].clone()), (json!("resolved"), json!({"inRelease": "1.2"})));
    assert_eq!(cli.get(&org)["statusDetails"], json!({"inRelease": "1.2"}), "kept with the issue");
    let r = cli.put(&org, json!({"statusDetails": {"inNextRelease": true}}));
    assert_eq!((r.status, r.json()["statusDetails"].clone()), (200, json!({"inNextRelease": true})), "{}", r.text());
    // Ignored for 30 minutes, then reopened and assigned to no one.
    let r = cli.put(&org, json!({"status": "ignored", "statusDetails": {"ignoreDuration": 30}}));
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ignored")), "{}", r.text());
    assert!(r.json()["statusDetails"]["ignoreUntil"].is_string(), "{}", r.text());
    let r = cli.put(&own, json!({"status": "unresolved", "assignedTo": null}));
    assert_eq!((r.status, r.json()["status"].as_str(), r.json()["assignedTo"].clone()), (200, Some("unresolved"), Value::Null), "{}", r.text());

    // Bulk: ignored until two more events, which bring it back.
    let bulk = format!("/api/0/projects/default/default/issues/?id={second}");
    let r = cli.put(&bulk, json!({"status": "ignored", "statusDetails": {"ignoreCount": 2}}));
    assert_eq!(r.json(), json!({"status": "ignored", "statusDetails": {"ignoreCount": 2}}));
    assert_eq!(cli.status(second), "ignored");
    cli.issue_of_message("payment declined");
    assert_eq!(cli.status(second), "ignored", "one event is not two");
    cli.issue_of_message("payment declined");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cli.status(second) != "unresolved" {
        assert!(std::time::Instant::now() < deadline, "the snooze did not run out after two events");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = cli.put(&bulk, json!({"status": "resolvedInNextRelease"}));
    assert_eq!(r.json(), json!({"status": "resolved", "statusDetails": {"inNextRelease": true}}));
    assert_eq!(cli.get(&format!("/api/0/issues/{second}/"))["statusDetails"], json!({"inNextRelease": true}));

    // Bad changes are refused with a reason, and change nothing.
    for (body, why) in [
        (json!({"status": "unresolved", "statusDetails": {"inRelease": "1.2"}}), "only resolving"),
        (json!({"statusDetails": {"ignoreDuration": "soon"}}), "give a number"),
        (json!({"statusDetails": {"ignoreDuration": 0}}), "between a minute and a year"),
        (json!({"statusDetails": {"ignoreCount": 1.5}}), "whole number"),
        (json!({"statusDetails": {"ignoreUntil": "tomorrow"}}), "is not a time"),
        (json!({"status": "resolvedInNextRelease", "statusDetails": {"ignoreDuration": 5}}), "only ignoring"),
        (json!({"statusDetails": {"ignoreDuration": 5, "ignoreUntil": "2099-01-01"}}), "not both"),
        (json!({"status": "sleeping"}), "is not a status"),
        (json!({}), "nothing to change"),
    ] {
        let r = cli.put(&own, body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(why), "{body}: {}", r.text());
    }
    assert_eq!(cli.status(first), "unresolved");
    assert_eq!(cli.api("GET", "/api/0/issues/999999/", b"").status, 404);
    assert_eq!(cli.api("PUT", "/api/0/issues/not-a-number/", b"{}").status, 404);

    // sentry-cli resolves and mutes through the bulk route.
    cli.ok(&["issues", "resolve", "--id", &first.to_string()]);
    assert_eq!(cli.status(first), "resolved");
    cli.ok(&["issues", "mute", "--id", &second.to_string()]);
    assert_eq!(cli.status(second), "ignored");
    cli.ok(&["issues", "resolve", "--next-release", "--id", &first.to_string()]);
    assert_eq!(cli.get(&own)["statusDetails"], json!({"inNextRelease": true}));

    // Deleted: 202, and gone with its events.
    assert_eq!(cli.api("DELETE", &org, b"").status, 202);
    assert_eq!(cli.api("GET", &own, b"").status, 404);
    assert_eq!(cli.api("DELETE", &format!("/api/0/issues/{second}/"), b"").status, 202);
    assert!(cli.server.groups("default").is_empty());
}

#[test]
fn uploads_past_the_few_read_at_once_wait_then_are_told_to_retry() {
    let cli = Cli::start();
    // Four uploads that send their first chunk slowly hold every turn.
    let head = |len: usize| {
        format!(
            "POST /api/0/organizations/default/chunk-upload/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len}\r\n\r\n\
             --b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\r\n",
            cli.token,
            sha1_hex(b"slow")
        )
    };
    let slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(cli.server.addr()).unwrap();
            s.write_all(head(1 << 20).as_bytes()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let (sum, data) = (sha1_hex(b"quick"), b"quick");
    let r = cli.upload_chunks(&[(&sum, data)]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(started.elapsed() >= Duration::from_secs(9), "it waited for a turn first: {:?}", started.elapsed());
    assert!(r.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok()), "{:?}", r.header("retry-after"));
    assert!(r.text().contains("try again"), "{}", r.text());
    // Once they are gone, an upload goes through.
    drop(slow);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cli.upload_chunks(&[(&sum, data)]).status, 200);
}

/// A JSON type, as a shape names it: `s` string, `n` number, `b` bool, `o` object, `a` array,
/// `s?` / `o?` string or object or null, `-` null.
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "-",
        Value::Bool(_) => "b",
        Value::Number(_) => "n",
        Value::String(_) => "s",
        Value::Array(_) => "a",
        Value::Object(_) => "o",
    }
}

/// Every key of `shape` is in `v` with its type (`?`: or null); the keys missing or mistyped.
fn misfits(what: &str, v: &Value, shape: &[(&str, &str)]) -> Vec<String> {
    shape
        .iter()
        .filter_map(|(key, want)| {
            let got = v.get(key).map_or("absent", type_of);
            let fits = match want.strip_suffix('?') {
                Some(t) => got == t || got == "-",
                None => got == *want,
            };
            (!fits).then(|| format!("{what}.{key}: {got}, Sentry sends {want}"))
        })
        .collect()
}

/// The fields Sentry's own answers carry for the endpoints `sentry-cli` reads, with their JSON
/// types, as recorded responses of sentry.io show them (the fixtures of sentry-cli's tests):
/// our answers have each of them, with that type, so that a tool written against Sentry reads
/// ours. (Sentry sends more; those are what a client can rely on.)
#[test]
fn answers_have_the_fields_and_types_of_sentrys_recorded_responses() {
    let cli = Cli::start();
    cli.issue_of_message("checkout failed");
    cli.ok(&["releases", "new", "shop@1.0.0"]);
    cli.ok(&["releases", "deploys", "shop@1.0.0", "new", "--env", "production", "--name", "first"]);
    let mut bad = Vec::new();
    let orgs = cli.get("/api/0/organizations/");
    bad.extend(misfits("organization", &orgs[0], &[
        ("id", "s"), ("slug", "s"), ("name", "s"), ("dateCreated", "s"), ("status", "o"), ("require2FA", "b"), ("avatar", "o"), ("features", "a"),
    ]));
    bad.extend(misfits("organization.status", &orgs[0]["status"], &[("id", "s"), ("name", "s")]));
    let projects = cli.get("/api/0/organizations/default/projects/");
    let project = projects.as_array().unwrap().iter().find(|p| p["slug"] == "default").unwrap();
    bad.extend(misfits("project", project, &[
        ("id", "s"), ("slug", "s"), ("name", "s"), ("team", "o"), ("teams", "a"), ("dateCreated", "s"), ("isMember", "b"), ("hasAccess", "b"),
        ("platform", "s?"), ("environments", "a"), ("firstEvent", "s?"), ("latestRelease", "o?"), ("features", "a"),
    ]));
    bad.extend(misfits("project.team", &project["team"], &[("id", "s"), ("slug", "s"), ("name", "s")]));
    let release = cli.get("/api/0/organizations/default/releases/shop@1.0.0/");
    bad.extend(misfits("release", &release, &[
        ("version", "s"), ("shortVersion", "s"), ("ref", "s?"), ("url", "s?"), ("dateCreated", "s"), ("dateReleased", "s?"), ("newGroups", "n"),
        ("commitCount", "n"), ("deployCount", "n"), ("lastDeploy", "o?"), ("lastEvent", "s?"), ("firstEvent", "s?"), ("projects", "a"),
        ("authors", "a"), ("data", "o"),
    ]));
    if let Some(p) = release["projects"].get(0) {
        bad.extend(misfits("release.projects[]", p, &[("id", "n"), ("slug", "s"), ("name", "s"), ("newGroups", "n")]));
    } else {
        bad.push("release.projects is empty".into());
    }
    let releases = cli.get("/api/0/organizations/default/releases/");
    bad.extend(misfits("releases[]", &releases[0], &[("version", "s"), ("dateCreated", "s"), ("newGroups", "n"), ("projects", "a")]));
    let deploys = cli.get("/api/0/organizations/default/releases/shop@1.0.0/deploys/");
    bad.extend(misfits("deploy", &deploys[0], &[("id", "s"), ("environment", "s"), ("dateStarted", "s?"), ("dateFinished", "s"), ("name", "s?"), ("url", "s?")]));
    let issues = cli.get("/api/0/projects/default/default/issues/");
    bad.extend(misfits("issue", &issues[0], &[
        ("id", "s"), ("shortId", "s"), ("title", "s"), ("culprit", "s"), ("lastSeen", "s"), ("firstSeen", "s"), ("status", "s"), ("level", "s"),
        ("count", "s"), ("userCount", "n"), ("permalink", "s"), ("project", "o"), ("statusDetails", "o"), ("assignedTo", "o?"),
    ]));
    let chunks = cli.get("/api/0/organizations/default/chunk-upload/");
    bad.extend(misfits("chunk-upload", &chunks, &[
        ("url", "s"), ("chunkSize", "n"), ("chunksPerRequest", "n"), ("maxFileSize", "n"), ("maxRequestSize", "n"), ("concurrency", "n"),
        ("hashAlgorithm", "s"), ("compression", "a"), ("accept", "a"),
    ]));
    assert!(bad.is_empty(), "fields that differ from Sentry's answers:\n{}", bad.join("\n"));
}

/// `{"merge": 1}` on the bulk route makes the issues one, the one with the most events, and
/// answers Sentry's `{"merge": {"parent", "children"}}`; their events are then the parent's.
#[test]
fn issues_are_merged_through_the_api() {
    let cli = Cli::start();
    let big = cli.issue_of_message("checkout failed");
    cli.issue_of_message("checkout failed");
    let small = cli.issue_of_message("payment declined");
    let bulk = |ids: &[u64]| format!("/api/0/projects/default/default/issues/?{}", ids.iter().map(|i| format!("id={i}")).collect::<Vec<_>>().join("&"));
    let r = cli.put(&bulk(&[small]), json!({"merge": 1}));
    assert_eq!(r.status, 400, "one issue can't be merged: {}", r.text());
    let r = cli.put(&bulk(&[small, big]), json!({"merge": 1}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"merge": {"parent": big.to_string(), "children": [small.to_string()]}}));
    let parent = cli.get(&format!("/api/0/issues/{big}/"));
    assert_eq!(parent["count"], "3", "{parent}");
    assert_eq!(cli.api("GET", &format!("/api/0/issues/{small}/"), b"").status, 404, "the child is gone");
    // Its next event goes to the parent.
    cli.issue_of_message("checkout failed");
    cli.server.cli_ok(&["capture", "Message", "--dsn", &cli.dsn(), "--message", "payment declined"]);
    cli.server.eventually("the merged issue's event counted on the parent", Duration::from_secs(10), || cli.get(&format!("/api/0/issues/{big}/"))["count"] == "5");
}

/// Comments through the API: a personal token writes one (Markdown kept as written, mentions
/// resolved), the issue's list shows it newest first with who wrote it, and the dashboard's
/// timeline has it; an organisation token, which is nobody, is told to use a personal one.
#[test]
fn comments_are_written_and_listed_through_the_api() {
    let cli = Cli::start();
    let id = cli.issue_of_message("checkout failed");
    let admin = cli.server.admin_session();
    let personal = cli.server.cli_ok(&["token", "create", "--org", "default", "--scopes", SCOPES, "--user", crate::harness::ADMIN_EMAIL]).trim().to_string();
    let path = format!("/api/0/issues/{id}/comments/");
    let post = |token: &str, body: Value| {
        let auth = format!("Bearer {token}");
        cli.server.request("POST", &path, &[("Authorization", &auth), ("Content-Type", "application/json")], body.to_string().as_bytes())
    };
    let r = post(&cli.token, json!({"text": "from nobody"}));
    assert_eq!(r.status, 400);
    assert!(r.json()["detail"].as_str().unwrap().contains("personal token"), "{}", r.text());
    let r = post(&personal, json!({"text": "first look: **the bank** is down"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let first = r.json();
    assert_eq!((first["type"].as_str(), first["data"]["text"].as_str()), (Some("note"), Some("first look: **the bank** is down")));
    assert_eq!(first["user"]["email"], crate::harness::ADMIN_EMAIL);
    assert_eq!(post(&personal, json!({"text": ""})).status, 400, "an empty comment");
    post(&personal, json!({"text": "fixed upstream"}));
    let list = cli.get(&path);
    let texts: Vec<&str> = list.as_array().unwrap().iter().map(|c| c["data"]["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["fixed upstream", "first look: **the bank** is down"]);
    let page = cli.server.get_as(&admin, &format!("/p/default/issues/{id}/")).text();
    assert!(page.contains("<strong>the bank</strong>"), "rendered on the timeline");
}
