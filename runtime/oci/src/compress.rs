//! Parallel, deterministic layer compression (gzip or zstd).
//!
//! The tar stream is cut into fixed-size chunks, each compressed on its own
//! as a complete gzip member or zstd frame, and written in order. RFC 1952
//! allows a file of several gzip members and every layer reader decodes them
//! (Go's `compress/gzip` reads multistream by default, as do zlib and
//! flate2's `MultiGzDecoder`); RFC 8878 defines a zstd stream as a sequence
//! of frames. Because chunk boundaries depend only on byte offsets, the
//! output is identical whatever the number of threads.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc;
use std::thread::JoinHandle;

use flate2::GzBuilder;

use super::{MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, MEDIA_LAYER_ZSTD};

/// Uncompressed bytes per gzip member or zstd frame. Part of every digest:
/// do not change without updating the golden-digest tests.
pub const CHUNK: usize = 1 << 20;

/// The gzip level: pinned, because it is part of every layer digest.
/// Level 1 keeps export at hardware speed (compression, not hashing, is the
/// bottleneck: ../shared/REFERENCE.md).
pub const GZIP_LEVEL: u32 = 1;
/// The zstd level, pinned for the same reason (zstd's own default).
pub const ZSTD_LEVEL: i32 = 3;

/// How new layers are compressed (`--layer-compression`). Gzip is the
/// default because every registry and runtime reads it; zstd is smaller and
/// faster where readers support it (containerd ≥ 1.5, podman).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    /// Plain tar: no CPU spent, most bytes moved.
    None,
}

impl std::str::FromStr for Compression {
    type Err = String;

    /// The names `--layer-compression` and the serialised form use.
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "gzip" => Ok(Self::Gzip),
            "zstd" => Ok(Self::Zstd),
            "none" => Ok(Self::None),
            other => Err(format!("{other:?}: expected gzip, zstd or none")),
        }
    }
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Gzip => MEDIA_LAYER_GZIP,
            Self::Zstd => MEDIA_LAYER_ZSTD,
            Self::None => MEDIA_LAYER_TAR,
        }
    }

    /// One chunk, compressed on its own. Gzip headers carry mtime 0 and OS
    /// "unknown", so nothing of the host is recorded.
    pub fn chunk(self, data: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Self::Gzip => {
                let mut enc = GzBuilder::new().mtime(0).operating_system(255).write(
                    Vec::with_capacity(data.len() / 2 + 64),
                    flate2::Compression::new(GZIP_LEVEL),
                );
                enc.write_all(data)?;
                enc.finish()
            }
            Self::Zstd => zstd::bulk::compress(data, ZSTD_LEVEL),
            Self::None => Ok(data.to_vec()),
        }
    }
}

/// A reader of the tar inside a layer of `media_type` (OCI or Docker names;
/// anything not plain tar or zstd is read as gzip, which is what registries
/// hold by default).
pub fn decoder<'a, R: io::Read + 'a>(
    media_type: &str,
    blob: R,
) -> io::Result<Box<dyn io::Read + 'a>> {
    Ok(match super::oci_layer_media_type(media_type) {
        MEDIA_LAYER_TAR => Box::new(blob),
        MEDIA_LAYER_ZSTD => Box::new(zstd::stream::read::Decoder::new(blob)?),
        _ => Box::new(flate2::read::MultiGzDecoder::new(blob)),
    })
}

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

/// A writer that compresses what it is given on `threads` threads into
/// `inner`.
pub struct ParallelCompress<W: Write> {
    inner: W,
    codec: Compression,
    buf: Vec<u8>,
    next_in: u64,
    next_out: u64,
    in_flight: usize,
    max_in_flight: usize,
    ready: BTreeMap<u64, Vec<u8>>,
    jobs: Option<mpsc::SyncSender<Job>>,
    done: mpsc::Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
}

impl<W: Write> ParallelCompress<W> {
    pub fn new(inner: W, codec: Compression, threads: usize) -> Self {
        let threads = threads.max(1);
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads * 2);
        let job_rx = std::sync::Arc::new(std::sync::Mutex::new(job_rx));
        let (done_tx, done) = mpsc::channel::<Done>();
        let workers = (0..threads)
            .map(|_| {
                let (rx, tx) = (job_rx.clone(), done_tx.clone());
                std::thread::spawn(move || {
                    loop {
                        let job = rx.lock().unwrap().recv();
                        let Ok((index, data)) = job else { break };
                        if tx.send((index, codec.chunk(&data))).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        Self {
            inner,
            codec,
            buf: Vec::with_capacity(CHUNK),
            next_in: 0,
            next_out: 0,
            in_flight: 0,
            max_in_flight: threads * 2,
            ready: BTreeMap::new(),
            jobs: Some(job_tx),
            done,
            workers,
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        while self.in_flight >= self.max_in_flight {
            self.receive_one()?;
        }
        let jobs = self.jobs.as_ref().expect("not finished");
        jobs.send((self.next_in, data))
            .map_err(|_| io::Error::other("gzip worker exited"))?;
        self.next_in += 1;
        self.in_flight += 1;
        Ok(())
    }

    fn receive_one(&mut self) -> io::Result<()> {
        let (index, result) = self
            .done
            .recv()
            .map_err(|_| io::Error::other("gzip worker exited"))?;
        self.in_flight -= 1;
        self.ready.insert(index, result?);
        while let Some(bytes) = self.ready.remove(&self.next_out) {
            self.inner.write_all(&bytes)?;
            self.next_out += 1;
        }
        Ok(())
    }

    /// Compress what is left and return the inner writer. An empty input
    /// still yields one (empty) member or frame, so the output is valid.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.next_in == 0 {
            if self.next_in == 0 && self.buf.is_empty() {
                let empty = self.codec.chunk(&[])?;
                self.inner.write_all(&empty)?;
                self.next_out = 1;
                self.next_in = 1;
            } else {
                self.submit()?;
            }
        }
        while self.in_flight > 0 {
            self.receive_one()?;
        }
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParallelCompress<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let take = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == CHUNK {
            self.submit()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test data: wrapping is the point
mod tests {
    use std::io::Read;

    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
            .collect()
    }

    fn compress(input: &[u8], codec: Compression, threads: usize) -> Vec<u8> {
        let mut w = ParallelCompress::new(Vec::new(), codec, threads);
        for piece in input.chunks(7777) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn gz(input: &[u8], threads: usize) -> Vec<u8> {
        compress(input, Compression::Gzip, threads)
    }

    #[test]
    fn zstd_does_not_depend_on_thread_count_and_round_trips() {
        let input = data(3 * CHUNK + 999);
        let one = compress(&input, Compression::Zstd, 1);
        assert_eq!(one, compress(&input, Compression::Zstd, 3));
        assert_eq!(zstd::stream::decode_all(&one[..]).unwrap(), input);
        let empty = compress(&[], Compression::Zstd, 2);
        assert!(zstd::stream::decode_all(&empty[..]).unwrap().is_empty());
    }

    #[test]
    fn none_is_the_input() {
        let input = data(2 * CHUNK + 5);
        assert_eq!(compress(&input, Compression::None, 2), input);
    }

    #[test]
    fn output_does_not_depend_on_thread_count_and_round_trips() {
        let input = data(3 * CHUNK + 12345);
        let one = gz(&input, 1);
        assert_eq!(one, gz(&input, 2));
        assert_eq!(one, gz(&input, 5));
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn empty_input_is_valid_gzip() {
        let out = gz(&[], 2);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }
}
