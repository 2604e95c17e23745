//! The ingest spool: what the server has acknowledged but not yet applied to the store, on
//! local disk. An append-only log of checksummed records in segment files
//! (`spool/00000000000000000000.log`, named by the position of their first byte), behind
//! three calls: [`Spool::append`] (durable once its ticket resolves), [`Spool::read`] (what is
//! durable, in order, from a position) and [`Spool::applied`] (everything before a position is
//! in the store: its segments can go).
//!
//! - **Group commit.** One thread writes every record appended while the previous write was
//!   syncing, with one `pwrite` and one `fdatasync` for all of them, then answers them all.
//! - **Preallocated segments.** A segment is created at its full size and filled with zeros
//!   (by a second thread, ahead of need), so that an append overwrites blocks the file system
//!   has already allocated: `fdatasync` then flushes data only, not the file's size and extents
//!   (about a quarter of the cost on ext4), and a full disk does not stop appends until the
//!   current segment is full.
//! - **Positions** ([`Lsn`]) are byte offsets in one address space over all segments: a
//!   segment starts where the previous one's space ends. A record's checksum covers its own
//!   position, so a record can never be read at the wrong place.
//! - **Recovery.** [`Spool::open`] scans what was not applied: it stops at the first record
//!   whose length or checksum is wrong (a write cut short by a crash or power loss, or a
//!   damaged disk), cuts it and everything after it in that segment, says so in the log and in
//!   [`Opened::cuts`], and never fails for it. Whoever applies records keeps its own mark of
//!   the position applied (the store commits it with the events), so a crash between the store
//!   commit and [`Spool::applied`] replays nothing twice.
//!
//! Record layout: `len u32 | crc32 u32 | events u32 | version u32 | appended_at f64 | data`,
//! little-endian, where `crc32` covers the record's position, the header after itself and the
//! data. `len` is never 0: a zero header is the end of the written part of a segment.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// A position in the spool: bytes from its beginning, over all segments.
pub type Lsn = u64;

const HEADER: usize = 24;
const VERSION: u32 = 1;
const SPARE: &str = "spare.tmp";
/// Where the next spare is written before it is complete.
const SPARE_PARTIAL: &str = "spare.partial";
const ID_FILE: &str = "id";
/// How much one read of a segment takes at most (records over it are read on their own).
const READ_CHUNK: usize = 4 << 20;

/// The spool's settings.
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    /// Bytes that may wait to be applied; past it, [`Spool::append`] refuses with
    /// [`SpoolError::Full`].
    pub max_bytes: u64,
    /// The size of a segment file (a larger record gets a segment of its own size).
    pub segment_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> SpoolConfig {
        SpoolConfig { max_bytes: 1 << 30, segment_bytes: 4 << 20 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("{unapplied} bytes of acknowledged events wait to be stored, and the spool holds at most {limit}")]
    Full { unapplied: u64, limit: u64 },
    #[error("the spool could not write to disk: {0}")]
    Io(String),
    #[error("the spool is shutting down")]
    Stopped,
}

impl From<io::Error> for SpoolError {
    fn from(e: io::Error) -> SpoolError {
        SpoolError::Io(e.to_string())
    }
}

/// One record, as read back.
#[derive(Clone, Debug)]
pub struct Record {
    pub start: Lsn,
    pub end: Lsn,
    /// The count given to [`Spool::append`].
    pub events: u32,
    /// Unix seconds when it was written.
    pub appended_at: f64,
    pub data: Vec<u8>,
}

/// What [`Spool::read`] returns: records in order, and the position after them (also after
/// anything skipped as unreadable), to give to [`Spool::applied`] once they are stored.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<Record>,
    pub end: Lsn,
}

/// A torn or damaged part of a segment that recovery (or a read) cut off.
#[derive(Clone, Debug)]
pub struct Cut {
    pub segment: PathBuf,
    /// Where in the file the cut begins.
    pub offset: u64,
    /// How many bytes after it were not zero (not a clean end).
    pub bytes: u64,
    /// Whether it was in the last segment: the usual torn tail of a crash, whose requests
    /// were never acknowledged. Elsewhere it is damage to acknowledged records.
    pub tail: bool,
}

/// What the spool holds now, for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct SpoolStats {
    /// Bytes written and not yet applied (the budget counts these).
    pub unapplied_bytes: u64,
    /// Events in records not yet applied.
    pub waiting_events: u64,
    /// Unix seconds at which the oldest record not yet applied was written.
    pub oldest_unapplied: Option<f64>,
    /// Segment files, and the disk space they take.
    pub segments: usize,
    pub disk_bytes: u64,
}

/// An opened spool and what recovery found.
pub struct Opened {
    pub spool: Spool,
    pub cuts: Vec<Cut>,
    /// Records found not yet applied (they will be read first).
    pub replay_records: u64,
    pub replay_events: u64,
}

/// The answer to one [`Spool::append`]: resolves once the record is on disk.
pub struct AppendTicket(oneshot::Receiver<Result<Lsn, SpoolError>>);

impl AppendTicket {
    /// The position just after the record, once it is durable.
    pub async fn wait(self) -> Result<Lsn, SpoolError> {
        self.0.await.unwrap_or(Err(SpoolError::Stopped))
    }

    pub fn wait_blocking(self) -> Result<Lsn, SpoolError> {
        self.0.blocking_recv().unwrap_or(Err(SpoolError::Stopped))
    }
}

#[derive(Clone, Debug)]
struct Segment {
    base: Lsn,
    capacity: u64,
    /// The end of its records (for the last segment: what is durable).
    data_end: Lsn,
    path: PathBuf,
}

struct Pending {
    data: Vec<u8>,
    events: u32,
    reply: oneshot::Sender<Result<Lsn, SpoolError>>,
}

struct State {
    pending: Vec<Pending>,
    pending_bytes: u64,
    /// Bytes of the round the appender is writing.
    inflight_bytes: u64,
    durable: Lsn,
    applied: Lsn,
    segments: VecDeque<Segment>,
    events_durable: u64,
    events_applied: u64,
    /// No more appends (the appender finishes what is pending).
    closing: bool,
    spare_ready: bool,
    /// The last segment is half full: time to prepare the next one.
    spare_wanted: bool,
    stopped: bool,
}

struct Shared {
    dir: PathBuf,
    config: SpoolConfig,
    id: String,
    state: Mutex<State>,
    /// Wakes the appender (pending records, closing).
    appends: Condvar,
    /// Wakes readers (more is durable, closing).
    durable: Condvar,
    /// Wakes whoever waits for a position to be applied.
    applied: Condvar,
    /// Wakes the thread that prepares the next segment.
    spare: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The spool of one server. Cheap to clone; every clone is the same spool.
#[derive(Clone)]
pub struct Spool {
    shared: Arc<Shared>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// The tail segment, as the appender holds it.
struct Tail {
    file: File,
    base: Lsn,
    capacity: u64,
    /// Where the next record goes, from the start of the file.
    offset: u64,
}

impl Spool {
    /// The spool's identity in `dir` (made on first use): the name under which whoever applies
    /// its records keeps the position it applied.
    pub fn identity(dir: &Path) -> io::Result<String> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(ID_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().len() == 32 => return Ok(text.trim().to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| io::Error::other(e.to_string()))?;
        let id = hex::encode(raw);
        let tmp = dir.join("id.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(id.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        sync_dir(dir)?;
        Ok(id)
    }

    /// Opens (or creates) the spool in `dir`. `applied` is the position its records were
    /// applied through, as the store recorded it (`None`: nothing recorded, replay all).
    /// Recovery cuts what it cannot read and reports it; it fails only when the disk does.
    pub fn open(dir: &Path, config: SpoolConfig, applied: Option<Lsn>) -> io::Result<Opened> {
        let id = Spool::identity(dir)?;
        let _ = std::fs::remove_file(dir.join(SPARE));
        let _ = std::fs::remove_file(dir.join(SPARE_PARTIAL));
        let mut files: Vec<(Lsn, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let base = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(base) = base {
                files.push((base, path));
            }
        }
        files.sort();
        let mut cuts = Vec::new();
        let mut segments: VecDeque<Segment> = VecDeque::new();
        let (mut replay_records, mut replay_events) = (0, 0);
        let count = files.len();
        for (i, (base, path)) in files.into_iter().enumerate() {
            let last = i + 1 == count;
            let capacity = std::fs::metadata(&path)?.len();
            if let Some(mark) = applied
                && mark >= base + capacity
                && !last
            {
                std::fs::remove_file(&path)?;
                continue;
            }
            let from = applied.map_or(base, |m| m.clamp(base, base + capacity));
            let scan = scan_segment(&path, base, from, last)?;
            if let Some(cut) = scan.cut {
                if cut.tail {
                    tracing::warn!(
                        segment = %cut.segment.display(), offset = cut.offset, bytes = cut.bytes,
                        "the spool ended in a torn record (a write cut short by a crash or power loss, never \
                         acknowledged); cut it off and kept every record before it"
                    );
                } else {
                    tracing::error!(
                        segment = %cut.segment.display(), offset = cut.offset, bytes = cut.bytes,
                        "a spool segment has a damaged record (a disk error?); the records after it in this \
                         segment cannot be read and are skipped"
                    );
                }
                cuts.push(cut);
            }
            replay_records += scan.records;
            replay_events += scan.events;
            segments.push_back(Segment { base, capacity, data_end: scan.data_end, path });
        }
        let start = applied.unwrap_or(0);
        let tail = match segments.back() {
            Some(s) => {
                let file = OpenOptions::new().read(true).write(true).open(&s.path)?;
                Tail { file, base: s.base, capacity: s.capacity, offset: s.data_end - s.base }
            }
            None => {
                let path = segment_path(dir, start);
                let file = create_zeroed(&path, config.segment_bytes)?;
                sync_dir(dir)?;
                segments.push_back(Segment { base: start, capacity: config.segment_bytes, data_end: start, path });
                Tail { file, base: start, capacity: config.segment_bytes, offset: 0 }
            }
        };
        let first = segments.front().map_or(start, |s| s.base);
        let durable = tail.base + tail.offset;
        let applied = applied.unwrap_or(first).clamp(first, durable);
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            config,
            id,
            state: Mutex::new(State {
                pending: Vec::new(),
                pending_bytes: 0,
                inflight_bytes: 0,
                durable,
                applied,
                segments,
                events_durable: replay_events,
                events_applied: 0,
                closing: false,
                spare_ready: false,
                spare_wanted: false,
                stopped: false,
            }),
            appends: Condvar::new(),
            durable: Condvar::new(),
            applied: Condvar::new(),
            spare: Condvar::new(),
        });
        let appender = {
            let shared = shared.clone();
            std::thread::Builder::new().name("spool-append".into()).spawn(move || append_loop(&shared, tail))?
        };
        let preparer = {
            let shared = shared.clone();
            std::thread::Builder::new().name("spool-prepare".into()).spawn(move || prepare_loop(&shared))?
        };
        let spool = Spool { shared, threads: Arc::new(Mutex::new(vec![appender, preparer])) };
        Ok(Opened { spool, cuts, replay_records, replay_events })
    }

    /// The spool's identity (see [`Spool::identity`]).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Queues a record (`events`: how many events it holds, for the counts) for the next
    /// group commit. Refused when the spool's budget is spent or it is closing.
    pub fn append(&self, data: Vec<u8>, events: u32) -> Result<AppendTicket, SpoolError> {
        let size = (HEADER + data.len()) as u64;
        let mut st = self.shared.lock();
        if st.closing {
            return Err(SpoolError::Stopped);
        }
        let unapplied = st.durable - st.applied + st.pending_bytes + st.inflight_bytes;
        if unapplied + size > self.shared.config.max_bytes {
            return Err(SpoolError::Full { unapplied, limit: self.shared.config.max_bytes });
        }
        let (reply, rx) = oneshot::channel();
        st.pending_bytes += size;
        st.pending.push(Pending { data, events, reply });
        drop(st);
        self.shared.appends.notify_one();
        Ok(AppendTicket(rx))
    }

    /// What is durable from `from` on, up to about `max_events` events and `max_bytes` bytes
    /// (at least one record when there is one). Waits up to `wait` for something durable;
    /// returns an empty batch (ending at `from`) when nothing came, or when the spool is
    /// closed and everything is read.
    pub fn read(&self, from: Lsn, max_events: usize, max_bytes: usize, wait: Duration) -> io::Result<Batch> {
        let deadline = Instant::now() + wait;
        let segments: Vec<Segment> = {
            let mut st = self.shared.lock();
            while st.durable <= from && !st.closing {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(Batch { records: vec![], end: from });
                }
                st = self.shared.durable.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
            }
            st.segments.iter().filter(|s| s.data_end > from).cloned().collect()
        };
        let mut batch = Batch { records: vec![], end: from };
        let (mut events, mut bytes) = (0usize, 0usize);
        let full = |events: usize, bytes: usize, batch: &Batch| {
            !batch.records.is_empty() && (events >= max_events || bytes >= max_bytes)
        };
        for seg in segments {
            if full(events, bytes, &batch) {
                break;
            }
            // Between segments lies unused space: nothing to read there.
            batch.end = batch.end.max(seg.base);
            let mut pos = batch.end;
            if pos >= seg.data_end {
                continue;
            }
            let file = File::open(&seg.path)?;
            'segment: while pos < seg.data_end && !full(events, bytes, &batch) {
                let want = ((seg.data_end - pos) as usize).min(READ_CHUNK);
                let mut chunk = vec![0u8; want];
                file.read_exact_at(&mut chunk, pos - seg.base)?;
                let mut at = 0;
                while at < chunk.len() && !full(events, bytes, &batch) {
                    match parse(&chunk[at..], pos + at as u64) {
                        Parsed::Record { record, size } => {
                            at += size;
                            events += record.events as usize;
                            bytes += record.data.len();
                            batch.end = record.end;
                            batch.records.push(record);
                        }
                        // Runs past the chunk: read again from its start (whole, if it alone
                        // is larger than a chunk).
                        Parsed::Short { .. } if at > 0 => break,
                        Parsed::Short { size } if size as u64 <= seg.data_end - pos && size > chunk.len() => {
                            chunk = vec![0u8; size];
                            file.read_exact_at(&mut chunk, pos - seg.base)?;
                        }
                        _ => {
                            // Durable bytes that do not read back: the disk damaged them.
                            tracing::error!(
                                segment = %seg.path.display(), offset = pos + at as u64 - seg.base,
                                "a spool record acknowledged earlier does not read back (a disk error?); \
                                 skipping the rest of its segment"
                            );
                            batch.end = seg.data_end;
                            break 'segment;
                        }
                    }
                }
                pos += at as u64;
            }
        }
        Ok(batch)
    }

    /// Everything before `end` is applied (`events` of them just now): segments wholly before
    /// it are deleted, and waiters for it are woken.
    pub fn applied(&self, end: Lsn, events: u64) {
        let mut gone = Vec::new();
        {
            let mut st = self.shared.lock();
            st.applied = st.applied.max(end);
            st.events_applied += events;
            while st.segments.len() > 1 && st.segments[0].data_end <= st.applied {
                gone.extend(st.segments.pop_front());
            }
        }
        self.shared.applied.notify_all();
        for seg in gone {
            if let Err(e) = std::fs::remove_file(&seg.path) {
                tracing::warn!(segment = %seg.path.display(), error = %e, "could not delete an applied spool segment");
            }
        }
    }

    /// The position after every record acknowledged so far.
    pub fn durable(&self) -> Lsn {
        self.shared.lock().durable
    }

    /// The position applied through.
    pub fn applied_through(&self) -> Lsn {
        self.shared.lock().applied
    }

    /// Waits until everything before `target` is applied, at most `timeout`. Whether it was.
    pub fn wait_applied(&self, target: Lsn, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while st.applied < target && !st.stopped {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self.shared.applied.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        st.applied >= target
    }

    pub fn stats(&self) -> SpoolStats {
        let (applied, durable, segments, waiting) = {
            let st = self.shared.lock();
            (st.applied, st.durable, st.segments.clone(), st.events_durable.saturating_sub(st.events_applied))
        };
        let oldest = if durable > applied {
            segments.iter().find(|s| s.data_end > applied).and_then(|s| {
                let pos = applied.max(s.base);
                let mut head = [0u8; HEADER];
                File::open(&s.path).ok()?.read_exact_at(&mut head, pos - s.base).ok()?;
                Some(f64::from_le_bytes(head[16..24].try_into().ok()?))
            })
        } else {
            None
        };
        SpoolStats {
            unapplied_bytes: durable - applied,
            waiting_events: waiting,
            oldest_unapplied: oldest,
            segments: segments.len(),
            disk_bytes: segments.iter().map(|s| s.capacity).sum(),
        }
    }

    /// Takes no more appends, writes what is pending and waits for that. Readers then get
    /// what is left, and an empty batch at the end without waiting.
    pub fn close(&self) {
        self.shared.lock().closing = true;
        self.shared.appends.notify_all();
        self.shared.durable.notify_all();
        self.shared.spare.notify_all();
        let threads: Vec<JoinHandle<()>> = self.threads.lock().map(|mut t| t.drain(..).collect()).unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }

    /// Closes, and wakes whoever still waits for a position to be applied. When everything
    /// was applied, the segment files are deleted: a stopped server leaves an empty spool (the
    /// next start begins a new segment where the store's mark says).
    pub fn shutdown(&self) {
        self.close();
        let drained = {
            let mut st = self.shared.lock();
            st.stopped = true;
            if st.applied >= st.durable { std::mem::take(&mut st.segments) } else { VecDeque::new() }
        };
        self.shared.applied.notify_all();
        for seg in drained {
            let _ = std::fs::remove_file(&seg.path);
        }
        let _ = std::fs::remove_file(self.shared.dir.join(SPARE));
    }

    /// Events in records not yet applied.
    pub fn waiting_events(&self) -> u64 {
        let st = self.shared.lock();
        st.events_durable.saturating_sub(st.events_applied)
    }
}

/// The end of the last record a spool directory holds, read from its files by another
/// process (the command line, waiting for a running server to apply what it acknowledged).
/// `None` when it holds none. Only headers are read; a record being written may count.
pub fn written_end(dir: &Path) -> io::Result<Option<Lsn>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut segments: Vec<(Lsn, PathBuf)> = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let base = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".log")).and_then(|n| n.parse().ok());
        if let Some(base) = base {
            segments.push((base, path));
        }
    }
    segments.sort();
    for (base, path) in segments.into_iter().rev() {
        let file = match File::open(&path) {
            Ok(f) => f,
            // Applied and deleted meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        let (mut offset, mut head) = (0u64, [0u8; HEADER]);
        while offset + HEADER as u64 <= len {
            file.read_exact_at(&mut head, offset)?;
            let size = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as u64;
            if size == 0 || offset + HEADER as u64 + size > len {
                break;
            }
            offset += HEADER as u64 + size;
        }
        if offset > 0 {
            return Ok(Some(base + offset));
        }
    }
    Ok(None)
}

enum Parsed {
    Record { record: Record, size: usize },
    /// The header is whole and sane, but the record runs past the buffer: `size` in all.
    Short { size: usize },
    /// A zero header: the end of the written part.
    End,
    Bad,
}

fn parse(buf: &[u8], start: Lsn) -> Parsed {
    if buf.len() < HEADER {
        return if buf.iter().all(|&b| b == 0) { Parsed::End } else { Parsed::Short { size: HEADER } };
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
    if len == 0 {
        return if buf[..HEADER].iter().all(|&b| b == 0) { Parsed::End } else { Parsed::Bad };
    }
    let size = HEADER + len;
    if buf.len() < size {
        return Parsed::Short { size };
    }
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if crc != checksum(start, &buf[8..HEADER], &buf[HEADER..size]) {
        return Parsed::Bad;
    }
    let events = u32::from_le_bytes(buf[8..12].try_into().expect("4 bytes"));
    let appended_at = f64::from_le_bytes(buf[16..24].try_into().expect("8 bytes"));
    Parsed::Record {
        record: Record { start, end: start + size as u64, events, appended_at, data: buf[HEADER..size].to_vec() },
        size,
    }
}

fn checksum(start: Lsn, head: &[u8], data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&start.to_le_bytes());
    h.update(head);
    h.update(data);
    h.finalize()
}

fn encode_into(buf: &mut Vec<u8>, start: Lsn, data: &[u8], events: u32, appended_at: f64) {
    let mut head = [0u8; HEADER];
    head[0..4].copy_from_slice(&(data.len() as u32).to_le_bytes());
    head[8..12].copy_from_slice(&events.to_le_bytes());
    head[12..16].copy_from_slice(&VERSION.to_le_bytes());
    head[16..24].copy_from_slice(&appended_at.to_le_bytes());
    let crc = checksum(start, &head[8..HEADER], data);
    head[4..8].copy_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(&head);
    buf.extend_from_slice(data);
}

struct Scan {
    data_end: Lsn,
    records: u64,
    events: u64,
    cut: Option<Cut>,
}

/// Reads a segment from `from` to the end of its records. What follows them must be zeros;
/// anything else is cut (zeroed in the last segment, where appends go on).
fn scan_segment(path: &Path, base: Lsn, from: Lsn, last: bool) -> io::Result<Scan> {
    let bytes = std::fs::read(path)?;
    let mut at = (from - base) as usize;
    let (mut records, mut events) = (0, 0);
    loop {
        match parse(&bytes[at.min(bytes.len())..], base + at as u64) {
            Parsed::Record { record, size } => {
                at += size;
                records += 1;
                events += record.events as u64;
            }
            Parsed::End => break,
            Parsed::Short { .. } | Parsed::Bad => break,
        }
    }
    let rest = &bytes[at.min(bytes.len())..];
    let dirty = rest.iter().rposition(|&b| b != 0).map(|i| i as u64 + 1);
    let cut = dirty.map(|n| Cut { segment: path.to_path_buf(), offset: at as u64, bytes: n, tail: last });
    if let (Some(n), true) = (dirty, last) {
        let file = OpenOptions::new().write(true).open(path)?;
        file.write_all_at(&vec![0u8; n as usize], at as u64)?;
        file.sync_data()?;
    }
    Ok(Scan { data_end: base + at as u64, records, events, cut })
}

fn segment_path(dir: &Path, base: Lsn) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// A file of `size` zero bytes, written out (not sparse) and synced.
fn create_zeroed(path: &Path, size: u64) -> io::Result<File> {
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The group-commit loop: takes everything pending, writes it, syncs once, answers.
fn append_loop(shared: &Shared, mut tail: Tail) {
    let mut buf = Vec::new();
    loop {
        let round: Vec<Pending> = {
            let mut st = shared.lock();
            while st.pending.is_empty() && !st.closing {
                st = shared.appends.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.pending.is_empty() {
                return;
            }
            st.inflight_bytes = std::mem::take(&mut st.pending_bytes);
            std::mem::take(&mut st.pending)
        };
        let now = unix_now();
        let mut round = round.into_iter().peekable();
        // One part per segment the round fills: written, synced, then answered.
        while round.peek().is_some() {
            buf.clear();
            let mut part = Vec::new();
            let mut events = 0u64;
            let start_offset = tail.offset;
            while let Some(p) = round.peek() {
                let size = (HEADER + p.data.len()) as u64;
                if tail.offset + size > tail.capacity {
                    break;
                }
                let p = round.next().expect("peeked");
                encode_into(&mut buf, tail.base + tail.offset, &p.data, p.events, now);
                tail.offset += size;
                events += p.events as u64;
                part.push((p, tail.base + tail.offset));
            }
            let written = if part.is_empty() {
                Ok(())
            } else {
                tail.file.write_all_at(&buf, start_offset).and_then(|()| tail.file.sync_data())
            };
            let freed: u64 = part.iter().map(|(p, _)| (HEADER + p.data.len()) as u64).sum();
            match written {
                Ok(()) => {
                    let end = tail.base + tail.offset;
                    {
                        let mut st = shared.lock();
                        st.durable = end;
                        st.inflight_bytes -= freed;
                        st.events_durable += events;
                        if let Some(s) = st.segments.back_mut() {
                            s.data_end = end;
                        }
                        if !st.spare_wanted && tail.offset * 2 >= tail.capacity {
                            st.spare_wanted = true;
                            shared.spare.notify_one();
                        }
                    }
                    shared.durable.notify_all();
                    for (p, end) in part {
                        let _ = p.reply.send(Ok(end));
                    }
                }
                Err(e) => {
                    tail.offset = start_offset;
                    tracing::error!(error = %e, "could not write to the spool; the requests get 503 and retry");
                    let msg = e.to_string();
                    for p in part.into_iter().map(|(p, _)| p).chain(round.by_ref()) {
                        let _ = p.reply.send(Err(SpoolError::Io(msg.clone())));
                    }
                    break;
                }
            }
            // The next record does not fit: move to a new segment.
            if let Some(next) = round.peek() {
                let need = (HEADER + next.data.len()) as u64;
                if let Err(e) = rotate(shared, &mut tail, need) {
                    tracing::error!(error = %e, "could not start a new spool segment (is the disk full?); the requests get 503 and retry");
                    let msg = e.to_string();
                    for p in round.by_ref() {
                        let _ = p.reply.send(Err(SpoolError::Io(msg.clone())));
                    }
                }
            }
        }
        shared.lock().inflight_bytes = 0;
    }
}

/// Seals the tail and starts the next segment, from the prepared spare when it fits.
fn rotate(shared: &Shared, tail: &mut Tail, need: u64) -> io::Result<()> {
    let base = tail.base + tail.capacity;
    let path = segment_path(&shared.dir, base);
    let spare = shared.dir.join(SPARE);
    let use_spare = {
        let mut st = shared.lock();
        st.spare_wanted = false;
        need <= shared.config.segment_bytes && std::mem::take(&mut st.spare_ready)
    };
    let (file, capacity) = if use_spare {
        std::fs::rename(&spare, &path)?;
        (OpenOptions::new().read(true).write(true).open(&path)?, shared.config.segment_bytes)
    } else {
        let capacity = shared.config.segment_bytes.max(need.div_ceil(4096) * 4096);
        (create_zeroed(&path, capacity)?, capacity)
    };
    sync_dir(&shared.dir)?;
    *tail = Tail { file, base, capacity, offset: 0 };
    shared.lock().segments.push_back(Segment { base, capacity, data_end: base, path });
    Ok(())
}

/// Keeps one zero-filled segment ready once the last one is half full, so that moving to a
/// new segment costs a rename.
fn prepare_loop(shared: &Shared) {
    let (spare, partial) = (shared.dir.join(SPARE), shared.dir.join(SPARE_PARTIAL));
    let mut failures = 0u32;
    loop {
        {
            let mut st = shared.lock();
            while (st.spare_ready || !st.spare_wanted) && !st.closing {
                st = shared.spare.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.closing {
                return;
            }
        }
        match create_zeroed(&partial, shared.config.segment_bytes).and_then(|_| std::fs::rename(&partial, &spare)) {
            Ok(()) => {
                failures = 0;
                shared.lock().spare_ready = true;
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                if failures == 0 {
                    tracing::warn!(error = %e, "could not prepare the next spool segment (is the disk full?); retrying every second");
                }
                failures += 1;
                let st = shared.lock();
                let _ = shared.spare.wait_timeout(st, Duration::from_secs(1));
            }
        }
    }
}
