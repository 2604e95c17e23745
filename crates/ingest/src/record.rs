//! What one accepted request leaves in the spool: its processed events (normalised and
//! grouped, with their raw payloads) and its counts of other items, in a compact binary form.
//! Processing happens before the spool, so that every refusal a client can get (400, 401, 413,
//! 429) is answered before the 200; the spool only carries what is certain to be stored.
//!
//! Layout: a version byte, then the events, then the counts, then (from version 2) the user
//! feedback and the client reports; numbers little-endian, strings and byte strings as a u32 length and the bytes.
//! Version 1 records (no feedback) still decode. A record that does not decode (written by a
//! newer version, or damaged in a way the checksum missed) is refused whole, never guessed at.

use protocol::{EventId, Level};
use store::{NewClientReport, NewEvent, NewFeedback, ProjectId};

const VERSION: u8 = 2;

/// The processed form of one request.
#[derive(Debug, Default, PartialEq)]
pub struct Spooled {
    pub events: Vec<NewEvent>,
    pub counts: Vec<(ProjectId, String, u64)>,
    pub feedback: Vec<NewFeedback>,
    pub client_reports: Vec<NewClientReport>,
}

/// What a record carries beside events and counts.
#[derive(Clone, Copy, Default)]
pub struct Extra<'a> {
    pub feedback: &'a [NewFeedback],
    pub client_reports: &'a [NewClientReport],
}

#[derive(Debug, thiserror::Error)]
#[error("a spool record does not decode: {0}")]
pub struct RecordError(&'static str);

pub fn encode(events: &[NewEvent], counts: &[(ProjectId, String, u64)], extra: Extra<'_>) -> Vec<u8> {
    let Extra { feedback, client_reports } = extra;
    let size: usize = events.iter().map(|e| e.payload.len() + e.title.len() + e.components.len() + 160).sum();
    let mut w = Writer(Vec::with_capacity(size + 32 * counts.len() + 16));
    w.0.push(VERSION);
    w.u32(events.len() as u32);
    for e in events {
        w.i64(e.project_id.0);
        w.0.extend_from_slice(&e.event_id.0);
        w.str(&e.kind);
        w.f64(e.timestamp);
        w.f64(e.received);
        w.0.push(level_code(e.level));
        w.opt_str(e.logger.as_deref());
        w.str(&e.title);
        w.str(&e.culprit);
        w.str(&e.hash);
        w.str(&e.components);
        w.u32(e.tags.len() as u32);
        for (k, v) in &e.tags {
            w.str(k);
            w.str(v);
        }
        match e.time_spent {
            Some(t) => {
                w.0.push(1);
                w.f64(t);
            }
            None => w.0.push(0),
        }
        w.bytes(&e.payload);
    }
    w.u32(counts.len() as u32);
    for (p, ty, n) in counts {
        w.i64(p.0);
        w.str(ty);
        w.u64(*n);
    }
    w.u32(feedback.len() as u32);
    for f in feedback {
        w.i64(f.project_id.0);
        w.0.extend_from_slice(&f.feedback_id.0);
        match f.event_id {
            Some(e) => {
                w.0.push(1);
                w.0.extend_from_slice(&e.0);
            }
            None => w.0.push(0),
        }
        w.str(&f.name);
        w.str(&f.email);
        w.str(&f.message);
        w.opt_str(f.url.as_deref());
        w.f64(f.timestamp);
        w.f64(f.received);
    }
    w.u32(client_reports.len() as u32);
    for c in client_reports {
        w.i64(c.project_id.0);
        w.str(&c.reason);
        w.str(&c.category);
        w.u64(c.quantity);
    }
    w.0
}

pub fn decode(data: &[u8]) -> Result<Spooled, RecordError> {
    let mut r = Reader(data);
    let version = r.u8()?;
    if !(1..=VERSION).contains(&version) {
        return Err(RecordError("unknown version"));
    }
    let n = r.u32()? as usize;
    // Every event takes more than 64 bytes: a count that could not fit is damage.
    if n > data.len() / 64 + 1 {
        return Err(RecordError("event count larger than the record"));
    }
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        let project_id = ProjectId(r.i64()?);
        let event_id = EventId(r.take(16)?.try_into().map_err(|_| RecordError("event id"))?);
        let kind = r.str()?;
        let timestamp = r.f64()?;
        let received = r.f64()?;
        let level = level_of(r.u8()?)?;
        let logger = r.opt_str()?;
        let title = r.str()?;
        let culprit = r.str()?;
        let hash = r.str()?;
        let components = r.str()?;
        let tag_count = r.u32()? as usize;
        if tag_count > r.0.len() / 8 {
            return Err(RecordError("tag count larger than the record"));
        }
        let mut tags = Vec::with_capacity(tag_count);
        for _ in 0..tag_count {
            tags.push((r.str()?, r.str()?));
        }
        let time_spent = match r.u8()? {
            0 => None,
            1 => Some(r.f64()?),
            _ => return Err(RecordError("time spent flag")),
        };
        let payload = r.bytes()?.to_vec();
        events.push(NewEvent {
            project_id,
            event_id,
            kind,
            timestamp,
            received,
            level,
            logger,
            title,
            culprit,
            hash,
            components,
            tags,
            time_spent,
            payload,
        });
    }
    let n = r.u32()? as usize;
    if n > r.0.len() / 16 {
        return Err(RecordError("count of item counts larger than the record"));
    }
    let mut counts = Vec::with_capacity(n);
    for _ in 0..n {
        counts.push((ProjectId(r.i64()?), r.str()?, r.u64()?));
    }
    let mut feedback = Vec::new();
    let mut client_reports = Vec::new();
    if version >= 2 {
        let n = r.u32()? as usize;
        // Every feedback takes more than 40 bytes.
        if n > r.0.len() / 40 {
            return Err(RecordError("feedback count larger than the record"));
        }
        for _ in 0..n {
            let project_id = ProjectId(r.i64()?);
            let feedback_id = EventId(r.array()?);
            let event_id = match r.u8()? {
                0 => None,
                1 => Some(EventId(r.array()?)),
                _ => return Err(RecordError("feedback event flag")),
            };
            feedback.push(NewFeedback {
                project_id,
                feedback_id,
                event_id,
                name: r.str()?,
                email: r.str()?,
                message: r.str()?,
                url: r.opt_str()?,
                timestamp: r.f64()?,
                received: r.f64()?,
            });
        }
        let n = r.u32()? as usize;
        if n > r.0.len() / 24 {
            return Err(RecordError("client report count larger than the record"));
        }
        for _ in 0..n {
            client_reports.push(NewClientReport { project_id: ProjectId(r.i64()?), reason: r.str()?, category: r.str()?, quantity: r.u64()? });
        }
    }
    if !r.0.is_empty() {
        return Err(RecordError("bytes after the end"));
    }
    Ok(Spooled { events, counts, feedback, client_reports })
}

const LEVELS: [Level; 5] = [Level::Debug, Level::Info, Level::Warning, Level::Error, Level::Fatal];

fn level_code(level: Level) -> u8 {
    LEVELS.iter().position(|l| *l == level).expect("every level is listed") as u8
}

fn level_of(code: u8) -> Result<Level, RecordError> {
    LEVELS.get(code as usize).copied().ok_or(RecordError("level"))
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
            None => self.0.push(0),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError("ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn f64(&mut self) -> Result<f64, RecordError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, RecordError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| RecordError("text that is not UTF-8"))
    }
    fn opt_str(&mut self) -> Result<Option<String>, RecordError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(RecordError("optional text flag")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u8, logger: Option<&str>, time_spent: Option<f64>, level: Level) -> NewEvent {
        NewEvent {
            project_id: ProjectId(7),
            event_id: EventId([n; 16]),
            kind: "exception".into(),
            timestamp: 1_700_000_000.25,
            received: 1_700_000_001.5,
            level,
            logger: logger.map(str::to_string),
            title: format!("ValueError: bad {n}"),
            culprit: "app.views in index".into(),
            hash: "0123456789abcdef".into(),
            components: "[]".into(),
            tags: vec![("server".into(), "web-1".into()), ("ünïcode".into(), "✓".into())],
            time_spent,
            payload: br#"{"message":"hi"}"#.to_vec(),
        }
    }

    #[test]
    fn round_trips_every_field() {
        let events = vec![
            event(1, Some("django"), Some(12.5), Level::Error),
            event(2, None, None, Level::Debug),
            event(3, Some(""), Some(0.0), Level::Fatal),
        ];
        let counts = vec![(ProjectId(7), "session".to_string(), 3), (ProjectId(8), "client_report".to_string(), 1)];
        let feedback = vec![feedback(1, Some(EventId([1; 16])), Some("https://shop/cart")), feedback(2, None, None)];
        let client_reports = vec![NewClientReport { project_id: ProjectId(7), reason: "before_send".into(), category: "error".into(), quantity: 3 }];
        let back = decode(&encode(&events, &counts, Extra { feedback: &feedback, client_reports: &client_reports })).unwrap();
        assert_eq!(back, Spooled { events, counts, feedback, client_reports });
        assert_eq!(decode(&encode(&[], &[], Extra::default())).unwrap(), Spooled::default());
    }

    fn feedback(n: u8, event_id: Option<EventId>, url: Option<&str>) -> NewFeedback {
        NewFeedback {
            project_id: ProjectId(7),
            feedback_id: EventId([100 + n; 16]),
            event_id,
            name: "Alice".into(),
            email: "alice@example.com".into(),
            message: "The pay button does nothing ✓".into(),
            url: url.map(str::to_string),
            timestamp: 1_700_000_000.5,
            received: 1_700_000_001.0,
        }
    }

    #[test]
    fn version_1_records_still_decode() {
        let events = vec![event(1, Some("django"), Some(12.5), Level::Error)];
        let counts = vec![(ProjectId(7), "session".to_string(), 3)];
        let mut v1 = encode(&events, &counts, Extra::default());
        // Version 1 is version 2 without the feedback and client report lists.
        v1[0] = 1;
        v1.truncate(v1.len() - 8);
        assert_eq!(decode(&v1).unwrap(), Spooled { events, counts, ..Spooled::default() });
    }

    #[test]
    fn damaged_records_are_refused_not_guessed() {
        let data = encode(&[event(1, Some("x"), Some(1.0), Level::Info)], &[(ProjectId(1), "session".into(), 1)], Extra { feedback: &[feedback(1, None, None)], client_reports: &[] });
        for cut in [0, 1, 5, data.len() / 2, data.len() - 1] {
            assert!(decode(&data[..cut]).is_err(), "cut at {cut}");
        }
        let mut newer = data.clone();
        newer[0] = 9;
        assert!(decode(&newer).is_err());
        let mut longer = data.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let mut huge_count = data;
        huge_count[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge_count).is_err());
    }
}
