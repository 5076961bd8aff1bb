//! Delivery bodies outside SQLite's B-tree, for a SQLite file store.
//!
//! A 17 KB body in an `events` row costs SQLite five overflow pages written to the WAL and then, at every
//! checkpoint, copied again into the database file: the profile of the ingest path had the SQLite thread at
//! ~40% of the gateway's CPU, the checkpoint alone ~12%. Here a group commit's bodies are appended to a segment
//! file in ONE `pwrite` and made durable with one `fdatasync` (overlapping the batch's SQL statements); the
//! `events` row holds the segment, offset and length, and is committed only after those bytes are durable. So
//! a row never points at bytes that a crash can lose, and bytes a crash leaves without a row (a batch that did
//! not commit) are never pointed at.
//!
//! Segments live in `<database file>-bodies/`, named `<unix ms>-<pid>-<n>.seg` by the process that writes
//! them, so two processes on one database (gateway and orchestrator, or two gateways) never write one file.
//! A segment is append-only and is closed at 64 MiB; after a failed write the process moves to a new one.
//! Nothing deletes segments: like the `events` rows, they are the audit trail. Back the directory up with the
//! database.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A segment is closed once it reaches this size.
const SEGMENT_BYTES: u64 = 64 << 20;

/// Where one body is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BodyRef {
    pub segment: String,
    pub offset: i64,
    pub len: i64,
}

#[derive(Debug)]
struct Segment {
    name: String,
    file: Arc<File>,
    /// Bytes reserved so far (written, or being written by a batch in flight).
    len: u64,
    /// Its directory entry is known durable (every write waits for that until it is).
    dir_synced: Arc<AtomicBool>,
}

/// The segment files of one SQLite database.
#[derive(Debug)]
pub(crate) struct BodyLog {
    dir: PathBuf,
    current: Mutex<Option<Segment>>,
    next_seq: AtomicU64,
}

/// Bodies reserved in a segment, to be written and made durable by [`BodyWrite::run`].
pub(crate) struct BodyWrite {
    file: Arc<File>,
    dir: PathBuf,
    dir_synced: Arc<AtomicBool>,
    offset: u64,
    bytes: Vec<u8>,
}

impl BodyWrite {
    /// Writes the bodies and waits until they are on disk (and, for a new segment, its name too).
    pub fn run(self) -> std::io::Result<()> {
        self.file.write_all_at(&self.bytes, self.offset)?;
        self.file.sync_data()?;
        if !self.dir_synced.load(Ordering::Acquire) {
            // A new file's directory entry is not covered by the file's own fsync.
            File::open(&self.dir)?.sync_all()?;
            self.dir_synced.store(true, Ordering::Release);
        }
        Ok(())
    }
}

impl BodyLog {
    /// The body directory of the database file at `db_path`.
    pub fn for_database(db_path: &Path) -> Self {
        let mut name = db_path.as_os_str().to_owned();
        name.push("-bodies");
        Self { dir: PathBuf::from(name), current: Mutex::new(None), next_seq: 0.into() }
    }

    /// Reserves room for `bodies` (contiguously, in order) and returns where each will be and the write that
    /// puts them there. A body of 0 bytes is reserved too (offset, length 0).
    pub fn reserve(&self, bodies: &[&[u8]]) -> std::io::Result<(Vec<BodyRef>, BodyWrite)> {
        let total: u64 = bodies.iter().map(|b| b.len() as u64).sum();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_none_or(|s| s.len > 0 && s.len + total > SEGMENT_BYTES) {
            *current = Some(self.create_segment()?);
        }
        let seg = current.as_mut().expect("a segment was just opened");
        let offset = seg.len;
        seg.len += total;
        let mut refs = Vec::with_capacity(bodies.len());
        let mut bytes = Vec::with_capacity(total as usize);
        for body in bodies {
            refs.push(BodyRef {
                segment: seg.name.clone(),
                offset: (offset + bytes.len() as u64) as i64,
                len: body.len() as i64,
            });
            bytes.extend_from_slice(body);
        }
        Ok((
            refs,
            BodyWrite {
                file: seg.file.clone(),
                dir: self.dir.clone(),
                dir_synced: seg.dir_synced.clone(),
                offset,
                bytes,
            },
        ))
    }

    /// A write failed: the next reservation starts a new segment (what this one holds past its last good
    /// write is unknown).
    pub fn abandon_segment(&self) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn create_segment(&self) -> std::io::Result<Segment> {
        std::fs::create_dir_all(&self.dir)?;
        let now = crate::now_ms();
        loop {
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let name = format!("{now}-{}-{seq}.seg", std::process::id());
            match File::options().read(true).write(true).create_new(true).open(self.dir.join(&name)) {
                Ok(file) => {
                    return Ok(Segment {
                        name,
                        file: Arc::new(file),
                        len: 0,
                        dir_synced: Arc::new(AtomicBool::new(false)),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one body back.
    pub fn read(&self, body: &BodyRef) -> std::io::Result<Vec<u8>> {
        let name = &body.segment;
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad segment name {name:?}")));
        }
        let (Ok(offset), Ok(len)) = (u64::try_from(body.offset), usize::try_from(body.len)) else {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "negative offset or length"));
        };
        let file = File::open(self.dir.join(name))?;
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_read_back_byte_for_byte_across_segments_and_processes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let log = BodyLog::for_database(&db);
        let a = b"{\"a\":1}".to_vec();
        let b = vec![0xff, 0x00, 0x7f];
        let empty: Vec<u8> = Vec::new();
        let (refs, write) = log.reserve(&[&a, &empty, &b]).unwrap();
        write.run().unwrap();
        assert_eq!(refs[0].offset, 0);
        assert_eq!(refs[1], BodyRef { segment: refs[0].segment.clone(), offset: 7, len: 0 });
        assert_eq!(refs[2].offset, 7);
        assert_eq!(log.read(&refs[0]).unwrap(), a);
        assert_eq!(log.read(&refs[1]).unwrap(), empty);
        assert_eq!(log.read(&refs[2]).unwrap(), b);

        // After a failed write the next batch goes to a new segment; the old one still reads.
        log.abandon_segment();
        let (more, write) = log.reserve(&[&a]).unwrap();
        write.run().unwrap();
        assert_ne!(more[0].segment, refs[0].segment);
        assert_eq!(log.read(&more[0]).unwrap(), a);

        // Another process (another BodyLog on the same database) never writes the same file.
        let other = BodyLog::for_database(&db);
        let (theirs, write) = other.reserve(&[&b]).unwrap();
        write.run().unwrap();
        assert_ne!(theirs[0].segment, more[0].segment);
        assert_eq!(log.read(&theirs[0]).unwrap(), b);
        assert!(dir.path().join("x.db-bodies").is_dir());
    }

    #[test]
    fn a_segment_is_closed_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let log = BodyLog::for_database(&dir.path().join("x.db"));
        {
            let mut current = log.current.lock().unwrap();
            *current = Some(log.create_segment().unwrap());
            current.as_mut().unwrap().len = SEGMENT_BYTES - 2;
        }
        let (refs, _) = log.reserve(&[b"abc"]).unwrap();
        assert_eq!(refs[0].offset, 0, "3 bytes do not fit in the 2 left: a new segment");
    }

    #[test]
    fn reading_refuses_names_outside_the_directory_and_short_segments() {
        let dir = tempfile::tempdir().unwrap();
        let log = BodyLog::for_database(&dir.path().join("x.db"));
        for segment in ["../x.db", "a/b", ".hidden", ""] {
            let err = log.read(&BodyRef { segment: segment.into(), offset: 0, len: 1 }).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{segment}");
        }
        let (refs, write) = log.reserve(&[b"abc"]).unwrap();
        write.run().unwrap();
        let past_end = BodyRef { len: 10, ..refs[0].clone() };
        assert_eq!(log.read(&past_end).unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
