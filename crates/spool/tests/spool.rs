//! The spool on a real directory: group commit, order, segments, the budget, recovery from
//! torn and damaged records, and replay from the applied mark.

use std::path::Path;
use std::time::Duration;

use spool::{Lsn, Spool, SpoolConfig, SpoolError};

fn config(segment: u64) -> SpoolConfig {
    SpoolConfig { max_bytes: 1 << 30, segment_bytes: segment }
}

fn record(i: usize, size: usize) -> Vec<u8> {
    let mut data = format!("record {i:06} ").into_bytes();
    data.resize(size.max(data.len()), b'a' + (i % 26) as u8);
    data
}

/// Appends records (waiting for each), returning the end position of each.
fn append_all(spool: &Spool, records: &[Vec<u8>]) -> Vec<Lsn> {
    let tickets: Vec<_> = records.iter().map(|r| spool.append(r.clone(), 1).unwrap()).collect();
    tickets.into_iter().map(|t| t.wait_blocking().unwrap()).collect()
}

/// Everything readable from `from`, in batches, as the applier reads it.
fn read_all(spool: &Spool, mut from: Lsn) -> (Vec<Vec<u8>>, Lsn) {
    let mut out = Vec::new();
    loop {
        let batch = spool.read(from, 7, 1 << 20, Duration::from_millis(0)).unwrap();
        if batch.end == from && batch.records.is_empty() {
            return (out, from);
        }
        out.extend(batch.records.into_iter().map(|r| r.data));
        from = batch.end;
    }
}

/// The labels (`record 000012`) of records, for readable assertions.
fn labels(records: &[Vec<u8>]) -> Vec<String> {
    records.iter().map(|r| String::from_utf8_lossy(&r[..13]).into_owned()).collect()
}

fn segments(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    names
}

#[test]
fn records_read_back_in_order_across_segments_and_applied_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let opened = Spool::open(dir.path(), config(4096), None).unwrap();
    let spool = opened.spool;
    let records: Vec<Vec<u8>> = (0..200).map(|i| record(i, 100 + i * 7 % 300)).collect();
    let ends = append_all(&spool, &records);
    assert!(ends.windows(2).all(|w| w[0] < w[1]), "positions grow");
    assert!(segments(dir.path()).len() > 5, "4 KiB segments hold a few records each: {:?}", segments(dir.path()));
    assert_eq!(spool::written_end(dir.path()).unwrap(), Some(*ends.last().unwrap()));

    let (read, end) = read_all(&spool, 0);
    assert_eq!(labels(&read), labels(&records));
    assert_eq!(end, *ends.last().unwrap());
    assert_eq!(spool.stats().waiting_events, 200);

    spool.applied(end, 200);
    assert_eq!(segments(dir.path()).len(), 1, "only the segment appends go to is kept");
    assert_eq!(spool.stats().waiting_events, 0);
    assert_eq!(spool.stats().unapplied_bytes, 0);
    assert!(spool.wait_applied(end, Duration::from_millis(10)));
    spool.shutdown();
    assert!(segments(dir.path()).is_empty(), "a spool stopped with everything applied leaves no segment");
    // It opens again where the store's mark says, and positions go on growing.
    let spool = Spool::open(dir.path(), config(4096), Some(end)).unwrap().spool;
    let next = append_all(&spool, &[record(500, 10)]);
    assert!(next[0] > end);
    assert_eq!(labels(&read_all(&spool, end).0), labels(&[record(500, 10)]));
    spool.shutdown();
}

#[test]
fn concurrent_appends_share_syncs_and_all_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), config(1 << 20), None).unwrap().spool;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let spool = spool.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    spool.append(record(t * 1000 + i, 200), 1).unwrap().wait_blocking().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (read, _) = read_all(&spool, 0);
    assert_eq!(read.len(), 800);
    let mut seen: Vec<&[u8]> = read.iter().map(|r| &r[..13]).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 800, "every record once");
    spool.shutdown();
}

#[test]
fn reopening_replays_only_what_was_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Vec<u8>> = (0..50).map(|i| record(i, 300)).collect();
    let ends = {
        let spool = Spool::open(dir.path(), config(4096), None).unwrap().spool;
        let ends = append_all(&spool, &records);
        spool.shutdown();
        ends
    };
    // The store recorded record 19 as the last applied.
    let opened = Spool::open(dir.path(), config(4096), Some(ends[19])).unwrap();
    assert!(opened.cuts.is_empty(), "{:?}", opened.cuts);
    assert_eq!(opened.replay_records, 30);
    let (read, _) = read_all(&opened.spool, ends[19]);
    assert_eq!(labels(&read), labels(&records[20..]));
    // Appends go on after the old records.
    let more = append_all(&opened.spool, &[record(99, 10)]);
    assert!(more[0] > ends[49]);
    opened.spool.shutdown();

    // No mark at all (a new store): everything still on disk again. Opening with the mark
    // deleted the segments wholly before it; the one holding record 19 is kept.
    let opened = Spool::open(dir.path(), config(4096), None).unwrap();
    let again = labels(&read_all(&opened.spool, opened.spool.applied_through()).0);
    let mut want = labels(&records[20..]);
    want.push(labels(&[record(99, 10)])[0].clone());
    assert!(again.len() > want.len() && again.len() < 51, "{} records", again.len());
    assert_eq!(again[again.len() - want.len()..], want[..]);
    opened.spool.shutdown();
}

/// The last segment file of a spool directory.
fn last_segment(dir: &Path) -> std::path::PathBuf {
    dir.join(segments(dir).last().unwrap())
}

#[test]
fn a_torn_final_record_is_cut_and_every_earlier_record_kept() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Vec<u8>> = (0..10).map(|i| record(i, 500)).collect();
    let ends = {
        let spool = Spool::open(dir.path(), config(1 << 16), None).unwrap().spool;
        let ends = append_all(&spool, &records);
        spool.shutdown();
        ends
    };
    // Power lost mid-write: the file ends inside the last record.
    let path = last_segment(dir.path());
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(ends[9] - 3).unwrap();
    drop(f);

    let opened = Spool::open(dir.path(), config(1 << 16), None).unwrap();
    assert_eq!(opened.cuts.len(), 1, "{:?}", opened.cuts);
    assert!(opened.cuts[0].tail);
    assert_eq!(opened.cuts[0].offset, ends[8]);
    let (read, _) = read_all(&opened.spool, 0);
    assert_eq!(labels(&read), labels(&records[..9]));
    // Appending goes on where the cut was, and reads back.
    let next = append_all(&opened.spool, &[record(42, 20)]);
    assert_eq!(next[0], ends[8] + 24 + 20);
    assert_eq!(labels(&read_all(&opened.spool, ends[8]).0), labels(&[record(42, 20)]));
    opened.spool.shutdown();
}

#[test]
fn a_flipped_byte_cuts_from_that_record_and_later_segments_survive() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Vec<u8>> = (0..40).map(|i| record(i, 400)).collect();
    let ends = {
        let spool = Spool::open(dir.path(), config(4096), None).unwrap().spool;
        let ends = append_all(&spool, &records);
        spool.shutdown();
        ends
    };
    let names = segments(dir.path());
    assert!(names.len() > 3);
    // Damage the second record of the first segment.
    let first = dir.path().join(&names[0]);
    let mut bytes = std::fs::read(&first).unwrap();
    let at = ends[0] as usize + 24 + 10;
    bytes[at] ^= 0x40;
    std::fs::write(&first, &bytes).unwrap();

    let opened = Spool::open(dir.path(), config(4096), None).unwrap();
    assert_eq!(opened.cuts.len(), 1, "{:?}", opened.cuts);
    assert!(!opened.cuts[0].tail, "damage before the last segment");
    assert_eq!(opened.cuts[0].offset, ends[0]);
    let (read, _) = read_all(&opened.spool, 0);
    let per_segment = (4096 / (24 + 400)) as usize;
    assert_eq!(labels(&read[..1]), labels(&records[..1]));
    assert_eq!(labels(&read[1..]), labels(&records[per_segment..]), "the damaged segment's later records are gone, the rest kept");
    opened.spool.shutdown();
}

#[test]
fn the_budget_refuses_appends_until_records_are_applied() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), SpoolConfig { max_bytes: 2000, segment_bytes: 4096 }, None).unwrap().spool;
    let ends = append_all(&spool, &[record(0, 900), record(1, 900)]);
    match spool.append(record(2, 900), 1) {
        Err(SpoolError::Full { limit: 2000, .. }) => {}
        other => panic!("expected Full, got {:?}", other.map(|_| ())),
    }
    spool.applied(ends[0], 1);
    append_all(&spool, &[record(2, 900)]);
    spool.shutdown();
}

#[test]
fn a_record_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), config(4096), None).unwrap().spool;
    let records = vec![record(0, 100), record(1, 50_000), record(2, 100)];
    append_all(&spool, &records);
    assert!(read_all(&spool, 0).0 == records, "the records read back whole");
    spool.shutdown();
    let opened = Spool::open(dir.path(), config(4096), None).unwrap();
    assert!(opened.cuts.is_empty(), "{:?}", opened.cuts);
    assert!(read_all(&opened.spool, 0).0 == records, "the records read back whole after reopening");
    opened.spool.shutdown();
}

#[test]
fn a_reader_waits_for_what_becomes_durable() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), config(1 << 16), None).unwrap().spool;
    let reader = {
        let spool = spool.clone();
        std::thread::spawn(move || spool.read(0, 100, 1 << 20, Duration::from_secs(10)).unwrap())
    };
    std::thread::sleep(Duration::from_millis(50));
    append_all(&spool, &[record(7, 10)]);
    let batch = reader.join().unwrap();
    assert_eq!(batch.records.len(), 1);
    assert!(batch.records[0].data == record(7, 10));
    assert!(batch.records[0].appended_at > 1.0e9);
    spool.close();
    assert!(spool.read(batch.end, 100, 1 << 20, Duration::from_secs(10)).unwrap().records.is_empty(), "closed: no wait");
    spool.shutdown();
}
