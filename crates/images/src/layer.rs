//! The streaming pipeline that turns a layer blob into a snapshot in one
//! pass: the compressed bytes are hashed (the blob digest) and optionally
//! copied into the blob store, decompressed, hashed again (the diff_id) and
//! unpacked, with decompression and unpacking on two threads joined by a
//! bounded channel of large buffers.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::mpsc;

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::unpack::{self, Limits, Unpacked};

/// Size of the buffers passed from the decompressing thread to the unpacking one.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the two threads.
const CHUNKS_IN_FLIGHT: usize = 8;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (one or more members).
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// Recognises the compression from the first bytes of a stream; other
    /// formats known to Docker are refused with a clear error.
    pub fn detect(head: &[u8]) -> Result<Compression> {
        match head {
            [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
            [b'B', b'Z', b'h', ..] => Err(Error::Unsupported(
                "bzip2-compressed layers (use gzip, zstd or none)".into(),
            )),
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Err(Error::Unsupported(
                "xz-compressed layers (use gzip, zstd or none)".into(),
            )),
            _ => Ok(Compression::None),
        }
    }

    /// The OCI media type of a layer with this compression.
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Whether the first bytes of a blob look like a layer (a tar, compressed or
/// not) rather than a JSON document or anything else.
pub fn looks_like_layer(head: &[u8]) -> bool {
    match Compression::detect(head) {
        Ok(Compression::Gzip | Compression::Zstd) => true,
        Ok(Compression::None) => {
            // "ustar" at offset 257, or an all-zero block (an empty tar).
            head.get(257..262) == Some(b"ustar")
                || (head.len() >= 512 && head[..512].iter().all(|b| *b == 0))
        }
        Err(_) => false,
    }
}

/// What unpacking a layer produced.
#[derive(Clone, Debug)]
pub struct Diff {
    /// Digest of the uncompressed tar (the config's diff_id).
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub diff_size: u64,
    /// What unpacking wrote.
    pub unpacked: Unpacked,
}

/// What one pass over a layer blob produced: the blob is always read to
/// its end (and copied when asked), even when unpacking it failed.
#[derive(Debug)]
pub struct Pass {
    /// Digest of the blob as read (compressed).
    pub blob: Digest,
    /// Size of the blob.
    pub blob_size: u64,
    /// The blob's compression.
    pub compression: Compression,
    /// The unpacked layer, or why it could not be unpacked.
    pub diff: Result<Diff>,
}

/// A reader that copies everything it reads into a writer.
struct Tee<'w, R> {
    inner: R,
    copy: Option<&'w mut File>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(w) = &mut self.copy {
            w.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

/// Messages from the decompressing thread.
enum Chunk {
    Data(Vec<u8>, usize),
    End,
}

/// The unpacking side of the channel.
struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    recycle: mpsc::SyncSender<Vec<u8>>,
    current: Option<(Vec<u8>, usize, usize)>,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((data, pos, len)) = &mut self.current {
                if *pos < *len {
                    let n = buf.len().min(*len - *pos);
                    buf[..n].copy_from_slice(&data[*pos..*pos + n]);
                    *pos += n;
                    return Ok(n);
                }
                let (data, _, _) = self.current.take().expect("checked above");
                let _ = self.recycle.try_send(data);
            }
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Chunk::Data(d, len)) => self.current = Some((d, 0, len)),
                Ok(Chunk::End) => self.ended = true,
                Err(_) => return Err(io::Error::other("the decompressing thread stopped")),
            }
        }
    }
}

type Source<'w, R> = BufReader<HashingReader<Tee<'w, R>>>;

/// Reads a layer blob from `src`, copying it to `tee` when given, and
/// unpacks it into `dest`. Digests and sizes of the blob and of the
/// uncompressed tar are computed on the way: reading, hashing and
/// decompressing run on the calling thread, unpacking on a second one. An
/// error is returned when the blob itself could not be read; unpacking
/// errors are in [`Pass::diff`].
pub fn apply<R: Read>(
    name: &str,
    src: R,
    tee: Option<&mut File>,
    dest: &Path,
    limits: Limits,
) -> Result<Pass> {
    let hashed = HashingReader::new(Tee {
        inner: src,
        copy: tee,
    });
    let mut buffered = BufReader::with_capacity(CHUNK, hashed);
    let head = buffered
        .fill_buf()
        .map_err(|e| Error::layer(name, "", format!("reading: {e}")))?;
    let detected = Compression::detect(head).map_err(|e| Error::layer(name, "", e.to_string()));

    let (tx, rx) = mpsc::sync_channel::<Chunk>(CHUNKS_IN_FLIGHT);
    let (recycle_tx, recycle_rx) = mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT + 2);
    std::thread::scope(|s| {
        let consumer = s.spawn(move || {
            let reader = ChannelReader {
                rx,
                recycle: recycle_tx,
                current: None,
                ended: false,
            };
            unpack::unpack(name, reader, dest, limits).and_then(|(u, mut rest)| {
                // Read what follows the end-of-archive marker, so the diff_id
                // covers the whole stream.
                io::copy(&mut rest, &mut io::sink())
                    .map_err(|e| Error::layer(name, "", format!("reading: {e}")))?;
                Ok(u)
            })
        });
        let produced = produce(name, buffered, detected, tx, recycle_rx);
        let unpacked = consumer
            .join()
            .unwrap_or_else(|_| Err(Error::layer(name, "", "the unpacking thread panicked")));
        let produced = produced?;
        let diff = match (produced.diff, unpacked) {
            // A decompression error explains the unpacker's.
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(None), Ok(_)) => Err(Error::layer(name, "", "unpacking stopped early")),
            (Ok(Some((diff_id, diff_size))), Ok(unpacked)) => Ok(Diff {
                diff_id,
                diff_size,
                unpacked,
            }),
        };
        Ok(Pass {
            blob: produced.blob,
            blob_size: produced.blob_size,
            compression: produced.compression,
            diff,
        })
    })
}

/// What the decompressing thread reports.
struct Produced {
    blob: Digest,
    blob_size: u64,
    compression: Compression,
    /// The diff_id and size, `None` when the unpacker stopped reading.
    diff: Result<Option<(Digest, u64)>>,
}

/// The decompressing thread: sends the uncompressed stream in chunks, then
/// reads the blob to its end whatever happened.
fn produce<R: Read>(
    name: &str,
    src: Source<'_, R>,
    detected: Result<Compression>,
    tx: mpsc::SyncSender<Chunk>,
    recycle: mpsc::Receiver<Vec<u8>>,
) -> Result<Produced> {
    let compression = detected.as_ref().copied().unwrap_or(Compression::None);
    let send = |r: &mut dyn Read| -> Result<Option<()>> {
        loop {
            let mut buf = recycle.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
            let mut len = 0;
            while len < buf.len() {
                match r.read(&mut buf[len..]) {
                    Ok(0) => break,
                    Ok(n) => len += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(Error::layer(name, "", format!("decompressing: {e}")));
                    }
                }
            }
            if len == 0 {
                // The receiver may be gone already; that is its business.
                let _ = tx.send(Chunk::End);
                return Ok(Some(()));
            }
            if tx.send(Chunk::Data(buf, len)).is_err() {
                // Unpacking stopped (its error is reported): no need to decompress further.
                return Ok(None);
            }
        }
    };
    let (diff, raw): (Result<Option<(Digest, u64)>>, Source<'_, R>) = match detected {
        Err(e) => (Err(e), src),
        Ok(Compression::None) => {
            let mut src = src;
            let r = send(&mut src).map(|o| o.map(|()| (Digest::of(b""), 0)));
            (r, src)
        }
        Ok(Compression::Gzip) => {
            let mut dec = HashingReader::new(flate2::bufread::MultiGzDecoder::new(src));
            let r = send(&mut dec);
            let (d, n, dec) = dec.finish();
            (r.map(|o| o.map(|()| (d, n))), dec.into_inner())
        }
        Ok(Compression::Zstd) => {
            let dec = zstd::stream::read::Decoder::with_buffer(src)
                .map_err(|e| Error::layer(name, "", format!("zstd: {e}")))?;
            let mut dec = HashingReader::new(dec);
            let r = send(&mut dec);
            let (d, n, dec) = dec.finish();
            (r.map(|o| o.map(|()| (d, n))), dec.finish())
        }
    };
    drop(tx);
    let mut raw = raw.into_inner();
    raw.drain()
        .map_err(|e| Error::layer(name, "", format!("reading: {e}")))?;
    let (blob, blob_size, _) = raw.finish();
    let diff = match diff {
        // Uncompressed: the diff is the blob.
        Ok(Some(_)) if compression == Compression::None => Ok(Some((blob.clone(), blob_size))),
        other => other,
    };
    Ok(Produced {
        blob,
        blob_size,
        compression,
        diff,
    })
}
