//! The container: a POSIX (ustar) tar stream inside gzip, written and read entry by
//! entry so that neither side ever holds a whole file in memory.
//!
//! Our own few lines rather than a tar crate: we write only regular files with short
//! names, and reading needs only the same, with a checksum on every header so a
//! damaged header is reported rather than misread. The result is an ordinary
//! `.tar.gz` that `tar -tzf` lists and `tar -xzf` unpacks, for an operator who wants
//! to look inside.

use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use std::io::{self, BufReader, BufWriter, Read, Write};

const BLOCK: usize = 512;
/// The largest size the 11 octal digits of a ustar header hold (8 GiB − 1); larger
/// sizes use the base-256 form GNU tar and every modern reader understand.
const OCTAL_SIZE_MAX: u64 = 0o777_7777_7777;

/// Writes entries into a gzip-compressed tar stream.
pub struct ArchiveWriter<W: Write> {
    out: GzEncoder<BufWriter<W>>,
    mtime: u64,
}

impl<W: Write> ArchiveWriter<W> {
    /// A new archive on `out`; every entry is stamped with `mtime` (seconds since the
    /// epoch): the backup's creation time.
    pub fn new(out: W, mtime: u64) -> Self {
        // Level 1: blobs are mostly PDFs and images that are compressed already, and the
        // table files shrink well even at the fastest level; speed matters more here.
        Self {
            out: GzEncoder::new(
                BufWriter::with_capacity(256 * 1024, out),
                Compression::fast(),
            ),
            mtime,
        }
    }

    /// Starts an entry of exactly `size` bytes; the caller then writes them with
    /// [`Self::write_data`] and calls [`Self::finish_entry`].
    ///
    /// # Errors
    /// When the name does not fit a ustar header, or writing fails.
    pub fn start_entry(&mut self, name: &str, size: u64) -> io::Result<()> {
        let header = header(name, size, self.mtime)?;
        self.out.write_all(&header)
    }

    /// Part of the current entry's data.
    ///
    /// # Errors
    /// When writing fails.
    pub fn write_data(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)
    }

    /// Pads the entry that has had `size` bytes written to a whole block.
    ///
    /// # Errors
    /// When writing fails.
    pub fn finish_entry(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// A whole entry from a reader that yields exactly `size` bytes.
    ///
    /// # Errors
    /// When reading or writing fails, or the reader yields a different length.
    pub fn append(&mut self, name: &str, size: u64, data: &mut impl Read) -> io::Result<()> {
        self.start_entry(name, size)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: expected {size} bytes, read {copied}"),
            ));
        }
        self.finish_entry(size)
    }

    /// Writes the end-of-archive marker and flushes everything; returns the writer.
    ///
    /// # Errors
    /// When writing fails.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        let buffered = self.out.finish()?;
        buffered
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }
}

fn header(name: &str, size: u64, mtime: u64) -> io::Result<[u8; BLOCK]> {
    if name.is_empty() || name.len() > 100 || !name.is_ascii() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("entry name {name:?} does not fit a tar header"),
        ));
    }
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    if size <= OCTAL_SIZE_MAX {
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        // Base-256: the high bit of the first byte set, the number big-endian.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..148].copy_from_slice(format!("{:011o}\0", mtime.min(0o777_7777_7777)).as_bytes());
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum = checksum(&h);
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

/// The header checksum: the sum of its bytes with the checksum field read as spaces.
fn checksum(h: &[u8; BLOCK]) -> u32 {
    h.iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum()
}

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the archive ends early{}: the file is truncated", after(.0))]
    Truncated(Option<String>),
    #[error("a damaged tar header{}", after(.0))]
    BadHeader(Option<String>),
    #[error("the archive holds {0}, which is not a regular file")]
    NotAFile(String),
    #[error("reading the archive: {0}")]
    Io(#[from] io::Error),
}

fn after(last: &Option<String>) -> String {
    last.as_ref()
        .map(|n| format!(" after {n}"))
        .unwrap_or_default()
}

/// Reads entries from a gzip-compressed tar stream, one at a time.
pub struct ArchiveReader<R: Read> {
    input: GzDecoder<BufReader<R>>,
    /// Bytes of the current entry not yet read, and its padding.
    remaining: u64,
    padding: u64,
    last: Option<String>,
}

/// One entry's name and size; its bytes follow through [`ArchiveReader::read_data`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub size: u64,
}

impl<R: Read> ArchiveReader<R> {
    /// Reads the archive in `input`.
    pub fn new(input: R) -> Self {
        Self {
            input: GzDecoder::new(BufReader::with_capacity(256 * 1024, input)),
            remaining: 0,
            padding: 0,
            last: None,
        }
    }

    /// The next entry, skipping whatever of the current one was not read; `None` at
    /// the end-of-archive marker.
    ///
    /// # Errors
    /// [`ReadError::Truncated`] when the stream ends before the marker,
    /// [`ReadError::BadHeader`] when a header's checksum is wrong.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, ReadError> {
        let skip = self.remaining + self.padding;
        let skipped = io::copy(&mut (&mut self.input).take(skip), &mut io::sink())
            .map_err(|e| self.eof_as_truncated(e))?;
        if skipped != skip {
            return Err(ReadError::Truncated(self.last.clone()));
        }
        self.remaining = 0;
        self.padding = 0;
        let mut h = [0u8; BLOCK];
        self.read_exact(&mut h)?;
        if h.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let stored = parse_octal(&h[148..156]);
        if stored != Some(u64::from(checksum(&h))) {
            return Err(ReadError::BadHeader(self.last.clone()));
        }
        let end = h[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&h[..end]).into_owned();
        let size = if h[124] & 0x80 != 0 {
            h[128..136]
                .iter()
                .fold(0u64, |n, b| (n << 8) | u64::from(*b))
        } else {
            parse_octal(&h[124..136]).ok_or_else(|| ReadError::BadHeader(self.last.clone()))?
        };
        if !matches!(h[156], b'0' | 0) {
            return Err(ReadError::NotAFile(name));
        }
        self.remaining = size;
        self.padding = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.last = Some(name.clone());
        Ok(Some(Entry { name, size }))
    }

    /// Reads up to `buf.len()` bytes of the current entry; 0 at its end.
    ///
    /// # Errors
    /// [`ReadError::Truncated`] when the stream ends inside the entry.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self
            .input
            .read(&mut buf[..want])
            .map_err(|e| self.eof_as_truncated(e))?;
        if n == 0 {
            return Err(ReadError::Truncated(self.last.clone()));
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ReadError> {
        self.input
            .read_exact(buf)
            .map_err(|e| self.eof_as_truncated(e))
    }

    fn eof_as_truncated(&self, e: io::Error) -> ReadError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ReadError::Truncated(self.last.clone())
        } else {
            ReadError::Io(e)
        }
    }
}

/// An octal number field, NUL- or space-terminated.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let text: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| char::from(*b))
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = ArchiveWriter::new(Vec::new(), 1_700_000_000);
        for (name, data) in entries {
            w.append(name, data.len() as u64, &mut &data[..]).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ReadError> {
        let mut r = ArchiveReader::new(bytes);
        let mut out = Vec::new();
        while let Some(e) = r.next_entry()? {
            let mut data = Vec::new();
            let mut buf = [0u8; 100];
            loop {
                let n = r.read_data(&mut buf)?;
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            assert_eq!(data.len() as u64, e.size);
            out.push((e.name, data));
        }
        Ok(out)
    }

    #[test]
    fn entries_round_trip_whatever_their_length() {
        let big = vec![7u8; 3 * BLOCK + 1];
        let bytes = archive(&[("a.txt", b"hello"), ("empty", b""), ("dir/big", &big)]);
        let back = read_all(&bytes).unwrap();
        assert_eq!(
            back,
            vec![
                ("a.txt".to_owned(), b"hello".to_vec()),
                ("empty".to_owned(), Vec::new()),
                ("dir/big".to_owned(), big),
            ]
        );
    }

    #[test]
    fn skipping_an_entry_unread_reaches_the_next() {
        let bytes = archive(&[("one", &[1u8; 700]), ("two", b"2")]);
        let mut r = ArchiveReader::new(&bytes[..]);
        assert_eq!(r.next_entry().unwrap().unwrap().name, "one");
        assert_eq!(r.next_entry().unwrap().unwrap().name, "two");
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn a_truncated_archive_says_so() {
        // Uncompressed, cut in the middle of the second entry, then compressed again.
        let mut plain = Vec::new();
        GzDecoder::new(&archive(&[("one", b"1"), ("two", &[2u8; 2000])])[..])
            .read_to_end(&mut plain)
            .unwrap();
        plain.truncate(BLOCK * 3);
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&plain).unwrap();
        let cut = gz.finish().unwrap();
        let err = read_all(&cut).unwrap_err();
        assert!(
            matches!(err, ReadError::Truncated(Some(ref n)) if n == "two"),
            "{err}"
        );
        // And a gzip stream cut short.
        let whole = archive(&[("one", b"1")]);
        let err = read_all(&whole[..whole.len() / 2]).unwrap_err();
        assert!(matches!(err, ReadError::Truncated(_)), "{err}");
    }

    #[test]
    fn a_damaged_header_is_refused() {
        let mut plain = Vec::new();
        GzDecoder::new(&archive(&[("one", b"1")])[..])
            .read_to_end(&mut plain)
            .unwrap();
        plain[0] = b'X';
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&plain).unwrap();
        let err = read_all(&gz.finish().unwrap()).unwrap_err();
        assert!(matches!(err, ReadError::BadHeader(None)), "{err}");
    }
}
