//! FileChunks: the file of an `http.response.pathsend`, read in chunks for the response body.
//! A chunk already in the page cache is read right on the I/O thread (`preadv2` with
//! `RWF_NOWAIT`, which never waits for the disk); one that is not is read on tokio's blocking
//! pool, so a cold or slow disk never stalls the connections sharing the thread.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use std::future::Future;

use bytes::{Bytes, BytesMut};
use tokio::task::JoinHandle;

pub struct FileChunks {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
    /// A read waiting for the disk on the blocking pool.
    pending: Option<JoinHandle<io::Result<BytesMut>>>,
}

impl FileChunks {
    const CHUNK: u64 = 256 * 1024;

    /// Stream `len` bytes of `file` from its start.
    pub fn new(file: File, len: u64) -> Self {
        Self { file: Arc::new(file), offset: 0, remaining: len, pending: None }
    }

    /// Bytes still to send.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next chunk; `None` once `len` bytes were sent. A file that shrank after its length
    /// was announced is an error: the response cannot be completed.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let chunk = match &mut self.pending {
            Some(read) => {
                let done = ready!(std::pin::Pin::new(read).poll(cx));
                self.pending = None;
                done.map_err(io::Error::other).and_then(|r| r)
            }
            None => {
                let len = self.remaining.min(Self::CHUNK) as usize;
                match read_cached(&self.file, len, self.offset) {
                    Ok(Some(chunk)) => Ok(chunk),
                    Ok(None) => {
                        let (file, offset) = (self.file.clone(), self.offset);
                        self.pending = Some(tokio::task::spawn_blocking(move || read_at(&file, len, offset)));
                        return self.poll_next(cx);
                    }
                    Err(e) => Err(e),
                }
            }
        };
        Poll::Ready(Some(chunk.and_then(|chunk| {
            if chunk.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.offset += chunk.len() as u64;
            self.remaining -= chunk.len() as u64;
            Ok(chunk.freeze())
        })))
    }
}

/// A buffer of up to `len` bytes filled by `read(buffer, len)`, a `pread`-like call that returns
/// how many bytes it wrote or -1. The buffer is not zeroed first: a 256 KiB memset per chunk
/// would cost as much as the read, and the read overwrites every byte it returns.
fn read_uninit(len: usize, read: impl FnOnce(*mut libc::c_void, usize) -> isize) -> io::Result<BytesMut> {
    let mut chunk = BytesMut::with_capacity(len);
    let read = read(chunk.spare_capacity_mut().as_mut_ptr().cast(), len);
    if read < 0 {
        return Err(io::Error::last_os_error());
    }
    let read = (read as usize).min(len);
    // SAFETY: the call wrote the first `read` bytes of the spare capacity (at least `len`).
    unsafe { chunk.set_len(read) };
    Ok(chunk)
}

/// Up to `len` bytes of `file` at `offset`, read on the blocking pool (it may wait for the disk).
fn read_at(file: &File, len: usize, offset: u64) -> io::Result<BytesMut> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: `buffer` is valid and writable for `len` bytes during the call; the descriptor
        // belongs to `file`, which is open for the duration of the call.
        let read = read_uninit(len, |buffer, len| unsafe {
            libc::pread(file.as_raw_fd(), buffer, len, offset as libc::off_t)
        });
        match read {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            read => return read,
        }
    }
}

/// Up to `len` bytes of `file` at `offset`, only if the page cache holds them: `Ok(None)` if it
/// does not (or the filesystem cannot tell), an empty chunk at the end of the file.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn read_cached(file: &File, len: usize, offset: u64) -> io::Result<Option<BytesMut>> {
    use std::os::fd::AsRawFd;
    let read = read_uninit(len, |buffer, len| {
        let iov = libc::iovec { iov_base: buffer, iov_len: len };
        // SAFETY: `iov` describes `buffer`, valid and writable for `len` bytes during the call;
        // the descriptor belongs to `file`, which is open for the duration of the call.
        unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset as libc::off_t, libc::RWF_NOWAIT) }
    });
    match read {
        Ok(chunk) => Ok(Some(chunk)),
        Err(e) => match e.raw_os_error() {
            Some(libc::EAGAIN | libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => Ok(None),
            _ => Err(e),
        },
    }
}

/// Elsewhere every read goes to the blocking pool.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn read_cached(_file: &File, _len: usize, _offset: u64) -> io::Result<Option<BytesMut>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::task::Waker;

    use super::*;

    fn temp_file(data: &[u8]) -> File {
        let path =
            std::env::temp_dir().join(format!("fasterapi-chunks-{}-{}", std::process::id(), data.len()));
        let mut file = File::create(&path).unwrap();
        file.write_all(data).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    #[test]
    fn cached_read_returns_the_bytes_at_the_offset() {
        let file = temp_file(b"0123456789");
        // Just written, so in the page cache: read here, or `None` where NOWAIT is unsupported.
        if let Some(chunk) = read_cached(&file, 4, 3).unwrap() {
            assert_eq!(&chunk[..], b"3456");
        }
        assert!(read_cached(&file, 4, 10).unwrap().is_none_or(|chunk| chunk.is_empty()));
    }

    #[test]
    fn blocking_read_returns_what_the_file_holds_past_the_offset() {
        let file = temp_file(b"0123456789");
        assert_eq!(&read_at(&file, 4, 8).unwrap()[..], b"89");
        assert!(read_at(&file, 4, 10).unwrap().is_empty());
    }

    #[tokio::test]
    async fn streams_the_file_in_chunks_then_ends() {
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        let mut chunks = FileChunks::new(temp_file(&data), data.len() as u64);
        let mut out = Vec::new();
        while let Some(chunk) = std::future::poll_fn(|cx| chunks.poll_next(cx)).await {
            out.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(out, data);
    }

    #[tokio::test]
    async fn a_file_shorter_than_announced_is_an_error() {
        let mut chunks = FileChunks::new(temp_file(b"short"), 10);
        let first = std::future::poll_fn(|cx| chunks.poll_next(cx)).await.unwrap().unwrap();
        assert_eq!(&first[..], b"short");
        let mut cx = Context::from_waker(Waker::noop());
        let second = loop {
            if let Poll::Ready(item) = chunks.poll_next(&mut cx) {
                break item;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(second.unwrap().unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
