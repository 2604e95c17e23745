//! What one accepted request leaves in the spool: its processed events (normalised and
//! grouped, with their raw payloads) and its counts of other items, in a compact binary form.
//! Processing happens before the spool, so that every refusal a client can get (400, 401, 413,
//! 429) is answered before the 200; the spool only carries what is certain to be stored.
//!
//! Layout: a version byte, then the events, then the counts, then (from version 3) the other
//! stored items as sections: a tag byte naming the kind (`Section`), the section's length (u32),
//! and its items. A kind with no items writes no section. Numbers are little-endian, strings and
//! byte strings a u32 length and the bytes. Version 2 records (feedback and client reports in
//! fixed places) and version 1 records (neither) still decode. A record that does not decode
//! (written by a newer version, a section of an unknown kind, or damage the checksum missed) is
//! refused whole, never guessed at.

use protocol::{EventId, Level};
use store::{NewClientReport, NewEvent, NewFeedback, NewItems, NewLog, NewSession, NewSessionCounts, ProjectId, SessionStatus};
use store::{CheckInStatus, MonitorConfig, NewCheckIn, Schedule};

const VERSION: u8 = 3;

/// The kinds of item a record's sections carry. A new kind takes the next number; a number is
/// never reused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Section {
    Feedback = 1,
    ClientReports = 2,
    Logs = 3,
    CheckIns = 4,
    Sessions = 5,
    SessionCounts = 6,
}

impl Section {
    fn of(tag: u8) -> Result<Section, RecordError> {
        Ok(match tag {
            1 => Section::Feedback,
            2 => Section::ClientReports,
            3 => Section::Logs,
            4 => Section::CheckIns,
            5 => Section::Sessions,
            6 => Section::SessionCounts,
            _ => return Err(RecordError("a section of an unknown kind")),
        })
    }
}

/// The processed form of one request.
#[derive(Debug, Default, PartialEq)]
pub struct Spooled {
    pub events: Vec<NewEvent>,
    pub counts: Vec<(ProjectId, String, u64)>,
    pub items: NewItems,
}

#[derive(Debug, thiserror::Error)]
#[error("a spool record does not decode: {0}")]
pub struct RecordError(&'static str);

pub fn encode(events: &[NewEvent], counts: &[(ProjectId, String, u64)], items: &NewItems) -> Vec<u8> {
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
    let NewItems { feedback, client_reports, sessions, session_counts, logs, check_ins } = items;
    w.section(Section::Feedback, feedback, write_feedback);
    w.section(Section::ClientReports, client_reports, |w, c| {
        w.i64(c.project_id.0);
        w.str(&c.reason);
        w.str(&c.category);
        w.u64(c.quantity);
    });
    w.section(Section::Sessions, sessions, |w, s| {
        w.i64(s.project_id.0);
        w.str(&s.sid);
        w.opt_str(s.did.as_deref());
        w.str(&s.release);
        w.str(&s.environment);
        w.f64(s.started);
        w.0.push(s.status as u8);
        w.0.push(s.errored as u8);
    });
    w.section(Section::SessionCounts, session_counts, |w, c| {
        w.i64(c.project_id.0);
        w.str(&c.release);
        w.str(&c.environment);
        w.f64(c.started);
        w.opt_str(c.did.as_deref());
        for n in [c.exited, c.errored, c.abnormal, c.crashed] {
            w.u64(n);
        }
    });
    w.section(Section::Logs, logs, write_log);
    w.section(Section::CheckIns, check_ins, write_check_in);
    w.0
}

fn write_log(w: &mut Writer, l: &NewLog) {
    w.i64(l.project_id.0);
    w.0.extend_from_slice(&l.log_id.0);
    w.f64(l.timestamp);
    w.f64(l.received);
    w.opt_str(l.trace_id.as_deref());
    w.str(&l.level);
    w.str(&l.body);
    w.opt_str(l.template.as_deref());
    w.opt_str(l.release.as_deref());
    w.opt_str(l.environment.as_deref());
    w.str(&l.attributes);
}

fn read_log(r: &mut Reader<'_>) -> Result<NewLog, RecordError> {
    Ok(NewLog {
        project_id: ProjectId(r.i64()?),
        log_id: EventId(r.array()?),
        timestamp: r.f64()?,
        received: r.f64()?,
        trace_id: r.opt_str()?,
        level: r.str()?,
        body: r.str()?,
        template: r.opt_str()?,
        release: r.opt_str()?,
        environment: r.opt_str()?,
        attributes: r.str()?,
    })
}

fn read_session(r: &mut Reader<'_>) -> Result<NewSession, RecordError> {
    Ok(NewSession {
        project_id: ProjectId(r.i64()?),
        sid: r.str()?,
        did: r.opt_str()?,
        release: r.str()?,
        environment: r.str()?,
        started: r.f64()?,
        status: match r.u8()? {
            0 => SessionStatus::Ok,
            1 => SessionStatus::Exited,
            2 => SessionStatus::Errored,
            3 => SessionStatus::Abnormal,
            4 => SessionStatus::Crashed,
            _ => return Err(RecordError("session status")),
        },
        errored: r.u8()? != 0,
    })
}

fn read_session_counts(r: &mut Reader<'_>) -> Result<NewSessionCounts, RecordError> {
    Ok(NewSessionCounts {
        project_id: ProjectId(r.i64()?),
        release: r.str()?,
        environment: r.str()?,
        started: r.f64()?,
        did: r.opt_str()?,
        exited: r.u64()?,
        errored: r.u64()?,
        abnormal: r.u64()?,
        crashed: r.u64()?,
    })
}

fn write_feedback(w: &mut Writer, f: &NewFeedback) {
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

fn read_feedback(r: &mut Reader<'_>) -> Result<NewFeedback, RecordError> {
    let project_id = ProjectId(r.i64()?);
    let feedback_id = EventId(r.array()?);
    let event_id = match r.u8()? {
        0 => None,
        1 => Some(EventId(r.array()?)),
        _ => return Err(RecordError("feedback event flag")),
    };
    Ok(NewFeedback {
        project_id,
        feedback_id,
        event_id,
        name: r.str()?,
        email: r.str()?,
        message: r.str()?,
        url: r.opt_str()?,
        timestamp: r.f64()?,
        received: r.f64()?,
    })
}

fn read_client_report(r: &mut Reader<'_>) -> Result<NewClientReport, RecordError> {
    Ok(NewClientReport { project_id: ProjectId(r.i64()?), reason: r.str()?, category: r.str()?, quantity: r.u64()? })
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
    let mut items = NewItems::default();
    if version == 2 {
        // Every feedback takes more than 40 bytes, every client report more than 24.
        items.feedback = r.list(40, read_feedback)?;
        items.client_reports = r.list(24, read_client_report)?;
    }
    if version >= 3 {
        let mut seen = Vec::new();
        while !r.0.is_empty() {
            let section = Section::of(r.u8()?)?;
            if seen.contains(&section) {
                return Err(RecordError("a section twice"));
            }
            seen.push(section);
            let mut s = Reader(r.bytes()?);
            match section {
                Section::Feedback => items.feedback = s.list(40, read_feedback)?,
                Section::ClientReports => items.client_reports = s.list(24, read_client_report)?,
                Section::Sessions => items.sessions = s.list(32, read_session)?,
                Section::SessionCounts => items.session_counts = s.list(56, read_session_counts)?,
                // Every log takes more than 60 bytes.
                Section::Logs => items.logs = s.list(60, read_log)?,
                // Every check-in takes more than 50 bytes.
                Section::CheckIns => items.check_ins = s.list(50, read_check_in)?,
            }
            if !s.0.is_empty() {
                return Err(RecordError("bytes after the end of a section"));
            }
        }
    }
    if !r.0.is_empty() {
        return Err(RecordError("bytes after the end"));
    }
    Ok(Spooled { events, counts, items })
}

fn write_check_in(w: &mut Writer, c: &NewCheckIn) {
    w.i64(c.project_id.0);
    w.0.extend_from_slice(&c.check_in_id.0);
    w.str(&c.monitor_slug);
    w.str(c.status.as_str());
    match c.duration {
        Some(d) => {
            w.0.push(1);
            w.f64(d);
        }
        None => w.0.push(0),
    }
    w.opt_str(c.release.as_deref());
    w.opt_str(c.environment.as_deref());
    match &c.config {
        Some(m) => {
            w.0.push(1);
            w.str(m.schedule.kind());
            w.str(&m.schedule.value());
            w.str(&m.timezone);
            w.u32(m.margin_minutes);
            w.u32(m.max_runtime_minutes);
        }
        None => w.0.push(0),
    }
    w.f64(c.timestamp);
    w.f64(c.received);
}

fn read_check_in(r: &mut Reader<'_>) -> Result<NewCheckIn, RecordError> {
    let project_id = ProjectId(r.i64()?);
    let check_in_id = EventId(r.array()?);
    let monitor_slug = r.str()?;
    let status = CheckInStatus::parse(&r.str()?).ok_or(RecordError("check-in status"))?;
    let duration = match r.u8()? {
        0 => None,
        1 => Some(r.f64()?),
        _ => return Err(RecordError("check-in duration flag")),
    };
    let (release, environment) = (r.opt_str()?, r.opt_str()?);
    let config = match r.u8()? {
        0 => None,
        1 => {
            let (kind, value) = (r.str()?, r.str()?);
            let schedule = Schedule::from_stored(&kind, &value).ok_or(RecordError("check-in schedule"))?;
            Some(MonitorConfig { schedule, timezone: r.str()?, margin_minutes: r.u32()?, max_runtime_minutes: r.u32()? })
        }
        _ => return Err(RecordError("check-in configuration flag")),
    };
    Ok(NewCheckIn { project_id, check_in_id, monitor_slug, status, duration, release, environment, config, timestamp: r.f64()?, received: r.f64()? })
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
    /// A section of items of one kind (none when there are no items): its tag, its length, the
    /// number of items, then each as `write` writes it.
    fn section<T>(&mut self, kind: Section, items: &[T], write: impl Fn(&mut Writer, &T)) {
        if items.is_empty() {
            return;
        }
        self.0.push(kind as u8);
        let at = self.0.len();
        self.u32(0);
        self.u32(items.len() as u32);
        for item in items {
            write(self, item);
        }
        let len = (self.0.len() - at - 4) as u32;
        self.0[at..at + 4].copy_from_slice(&len.to_le_bytes());
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
    /// A count, then that many items as `read` reads them; a count that could not fit in what
    /// is left (each item takes more than `min_size` bytes) is damage.
    fn list<T>(&mut self, min_size: usize, read: impl Fn(&mut Reader<'a>) -> Result<T, RecordError>) -> Result<Vec<T>, RecordError> {
        let n = self.u32()? as usize;
        if n > self.0.len() / min_size {
            return Err(RecordError("an item count larger than the record"));
        }
        (0..n).map(|_| read(self)).collect()
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
    fn check_ins_round_trip() {
        use store::IntervalUnit;
        let check_in = |n: u8, status, config: Option<MonitorConfig>| NewCheckIn {
            project_id: ProjectId(7),
            check_in_id: EventId([n; 16]),
            monitor_slug: format!("job-{n}"),
            status,
            duration: n.is_multiple_of(2).then_some(1.25),
            release: Some("1.0".into()),
            environment: None,
            config,
            timestamp: 1_700_000_000.5,
            received: 1_700_000_001.0,
        };
        let crontab = MonitorConfig::new(Schedule::crontab("0 2 * * *").unwrap(), Some("Europe/Vienna"), Some(5), Some(20)).unwrap();
        let interval = MonitorConfig::new(Schedule::interval(10, IntervalUnit::Hour).unwrap(), None, None, None).unwrap();
        let check_ins = vec![
            check_in(1, CheckInStatus::InProgress, Some(crontab)),
            check_in(2, CheckInStatus::Ok, Some(interval)),
            check_in(3, CheckInStatus::Error, None),
        ];
        let items = NewItems { check_ins, feedback: vec![feedback(1, None, None)], ..NewItems::default() };
        let data = encode(&[], &[], &items);
        assert_eq!(decode(&data).unwrap(), Spooled { items, ..Spooled::default() });
        // Cut inside the check-ins' section, it is refused rather than guessed at.
        assert!(decode(&data[..data.len() - 3]).is_err());
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
        let sessions = vec![NewSession {
            project_id: ProjectId(7),
            sid: "5d2ef1b4-2e4a-4c5e-9f63-3c9e5e7f1a2b".into(),
            did: Some("alice".into()),
            release: "shop@1.2.0".into(),
            environment: "production".into(),
            started: 1_700_000_000.5,
            status: SessionStatus::Crashed,
            errored: true,
        }];
        let session_counts = vec![NewSessionCounts {
            project_id: ProjectId(7),
            release: "shop@1.2.0".into(),
            environment: "".into(),
            started: 1_700_000_000.0,
            did: None,
            exited: 10,
            errored: 2,
            abnormal: 0,
            crashed: 1,
        }];
        let logs = vec![log(1, Some("5f066c6f17bd443e963bc7df5800e0fc"), Some("Order {order_id} paid")), log(2, None, None)];
        let items = NewItems { feedback, client_reports, sessions, session_counts, logs, ..NewItems::default() };
        let back = decode(&encode(&events, &counts, &items)).unwrap();
        assert_eq!(back, Spooled { events, counts, items });
        assert_eq!(decode(&encode(&[], &[], &NewItems::default())).unwrap(), Spooled::default());
    }

    fn log(n: u8, trace_id: Option<&str>, template: Option<&str>) -> NewLog {
        NewLog {
            project_id: ProjectId(7),
            log_id: EventId([200 + n; 16]),
            timestamp: 1_700_000_000.123_456,
            received: 1_700_000_001.0,
            trace_id: trace_id.map(str::to_string),
            level: "warn".into(),
            body: format!("Order {n} paid ✓"),
            template: template.map(str::to_string),
            release: (n == 1).then(|| "shop@1.2.3".to_string()),
            environment: (n == 2).then(|| "production".to_string()),
            attributes: r#"{"sentry.message.parameter.order_id":7}"#.into(),
        }
    }

    #[test]
    fn logs_round_trip_and_a_damaged_log_section_is_refused() {
        let items = NewItems { logs: vec![log(1, Some("5f066c6f17bd443e963bc7df5800e0fc"), Some("t")), log(2, None, None)], ..NewItems::default() };
        let data = encode(&[], &[], &items);
        assert_eq!(decode(&data).unwrap().items, items);
        // The section claims more logs than it could hold.
        let mut damaged = data.clone();
        damaged[14..18].copy_from_slice(&1000u32.to_le_bytes());
        assert!(decode(&damaged).is_err());
        assert!(decode(&data[..data.len() - 3]).is_err());
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
        // Version 1 is events and counts, as version 3 without sections.
        let mut v1 = encode(&events, &counts, &NewItems::default());
        v1[0] = 1;
        assert_eq!(decode(&v1).unwrap(), Spooled { events, counts, ..Spooled::default() });
    }

    #[test]
    fn version_2_records_still_decode() {
        let events = vec![event(1, Some("django"), Some(12.5), Level::Error)];
        let feedback = vec![feedback(1, Some(EventId([1; 16])), None)];
        let client_reports = vec![NewClientReport { project_id: ProjectId(7), reason: "ratelimit_backoff".into(), category: "error".into(), quantity: 2 }];
        // Version 2 put a list of feedback and a list of client reports after the counts.
        let mut w = Writer(encode(&events, &[], &NewItems::default()));
        w.0[0] = 2;
        w.u32(1);
        write_feedback(&mut w, &feedback[0]);
        w.u32(1);
        w.i64(7);
        w.str("ratelimit_backoff");
        w.str("error");
        w.u64(2);
        let items = NewItems { feedback, client_reports, ..NewItems::default() };
        assert_eq!(decode(&w.0).unwrap(), Spooled { events, counts: vec![], items });
    }

    #[test]
    fn a_section_of_an_unknown_kind_is_refused() {
        let mut data = encode(&[], &[], &NewItems::default());
        data.extend_from_slice(&[200, 0, 0, 0, 0]);
        assert!(decode(&data).is_err());
        let items = NewItems { feedback: vec![feedback(1, None, None)], ..NewItems::default() };
        let once = encode(&[], &[], &items);
        let mut twice = once.clone();
        twice.extend_from_slice(&once[9..]);
        assert!(decode(&once).is_ok());
        assert!(decode(&twice).is_err(), "the same section twice");
    }

    #[test]
    fn damaged_records_are_refused_not_guessed() {
        let data = encode(&[event(1, Some("x"), Some(1.0), Level::Info)], &[(ProjectId(1), "session".into(), 1)], &NewItems { feedback: vec![feedback(1, None, None)], ..NewItems::default() });
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
