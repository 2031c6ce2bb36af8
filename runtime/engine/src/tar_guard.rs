//! A reader that sits under `tar::Archive` for hostile tars and refuses
//! what the tar crate would otherwise trust: it reads GNU long-name /
//! long-link and PAX extension headers whole into memory with the size the
//! header declares, so a 100 GiB "file name" (100 MB gzipped) exhausts the
//! host. The guard follows the stream block by block, reads each header's
//! type and size, and fails the read when an extension header is larger
//! than [`MAX_EXTENSION`] or the whole stream passes `max_bytes` (which
//! also bounds bytes after the end-of-archive marker that a digest check
//! would drain).

use std::io::{self, Read};

/// The largest PAX or GNU extension header accepted: far above any real
/// path or attribute set.
pub const MAX_EXTENSION: u64 = 1 << 20;

pub struct TarGuard<R> {
    inner: R,
    max_bytes: u64,
    /// Bytes passed through.
    offset: u64,
    /// Offset of the next header block; `None` after the end marker.
    next_header: Option<u64>,
    header: Vec<u8>,
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R, max_bytes: u64) -> Self {
        Self {
            inner,
            max_bytes,
            offset: 0,
            next_header: Some(0),
            header: Vec::with_capacity(512),
        }
    }

    /// Look at `bytes`, which start at `self.offset`.
    fn watch(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut at = self.offset;
        let mut rest = bytes;
        while let Some(next) = self.next_header {
            let end = at + rest.len() as u64;
            if end <= next {
                break;
            }
            // Skip to the header (or to where its collection stopped).
            let skip = usize::try_from(next.saturating_sub(at) + self.header.len() as u64)
                .unwrap_or(usize::MAX)
                .min(rest.len());
            let start = if self.header.is_empty() { skip } else { 0 };
            rest = &rest[start..];
            at += start as u64;
            let want = 512 - self.header.len();
            let take = want.min(rest.len());
            self.header.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            at += take as u64;
            if self.header.len() < 512 {
                break;
            }
            let block = std::mem::take(&mut self.header);
            self.next_header = next_after(&block, next)?;
        }
        Ok(())
    }
}

/// Where the header after `block` (at `offset`) is; `None` at the end
/// marker (a zero block).
fn next_after(block: &[u8], offset: u64) -> io::Result<Option<u64>> {
    if block.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let size = size_of(&block[124..136])?;
    let kind = block[156];
    if matches!(kind, b'L' | b'K' | b'x' | b'g') && size > MAX_EXTENSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a tar extension header of {size} bytes (at most {MAX_EXTENSION}): refused"),
        ));
    }
    let data = size.div_ceil(512).saturating_mul(512);
    Ok(Some(offset.saturating_add(512).saturating_add(data)))
}

/// A header's size field: octal, or GNU base-256 (high bit set).
fn size_of(field: &[u8]) -> io::Result<u64> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "a tar header with a bad size");
    if field[0] & 0x80 != 0 {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            n = n.checked_mul(256).ok_or_else(bad)? | u64::from(b);
        }
        return Ok(n);
    }
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| bad())
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.watch(&buf[..n])?;
        self.offset += n as u64;
        if self.offset > self.max_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the tar stream is over {} bytes: refused", self.max_bytes),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, size: u64) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_size(size);
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    fn read_all(bytes: &[u8], chunk: usize, max: u64) -> io::Result<u64> {
        let mut g = TarGuard::new(bytes, max);
        let mut buf = vec![0u8; chunk];
        let mut total = 0;
        loop {
            let n = g.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    }

    #[test]
    fn real_archives_pass_whatever_the_read_sizes() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(700);
        h.set_cksum();
        b.append_data(&mut h, "a".repeat(150), &[7u8; 700][..])
            .unwrap();
        b.append_data(&mut h, "b", &[7u8; 700][..]).unwrap();
        let bytes = b.into_inner().unwrap();
        for chunk in [1, 7, 512, 513, 4096] {
            assert_eq!(
                read_all(&bytes, chunk, 1 << 20).unwrap(),
                bytes.len() as u64
            );
        }
    }

    #[test]
    fn a_huge_extension_header_or_stream_is_refused() {
        let mut bytes = header("././@LongLink", b'L', 100 << 30);
        bytes.extend(vec![0u8; 4096]);
        for chunk in [1, 100, 512, 8192] {
            let e = read_all(&bytes, chunk, 1 << 40).unwrap_err();
            assert!(e.to_string().contains("extension header"), "{e}");
        }
        let pax = header("x", b'x', MAX_EXTENSION + 1);
        assert!(read_all(&pax, 512, 1 << 40).is_err());
        let mut big = header("f", b'0', 10_000);
        big.extend(vec![1u8; 10_240]);
        assert!(
            read_all(&big, 512, 4096)
                .unwrap_err()
                .to_string()
                .contains("over 4096")
        );
    }
}
