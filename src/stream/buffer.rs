//! The byte buffers behind [`IoStream`](crate::IoStream): a read buffer holding what the
//! socket returned and no read took yet, and a write buffer holding what the socket did
//! not take yet.
//!
//! A stream's buffers hold memory in proportion to what they hold: a socket read lands
//! in one scratch buffer per thread and only the bytes that arrived are copied into the
//! stream's own buffer (unless the buffer already holds a read chunk or more, when the
//! read lands in place), and a buffer emptied with more than [`RETAINED_CAPACITY`] bytes
//! of capacity gives its memory back, to a per-thread pool of at most [`POOL_BYTES`]
//! that the next large buffer is taken from (see [`recycle`]). An idle stream holds
//! almost nothing, and one holding a partial line of `k` bytes about `k`. In steady
//! state a stream allocates nothing per read or write.

use std::cell::RefCell;
use std::io;

/// The most capacity an emptied buffer keeps for the next message.
pub(crate) const RETAINED_CAPACITY: usize = 4 * 1024;

/// Buffers larger than [`RETAINED_CAPACITY`] that emptied (or whose bytes were consumed
/// elsewhere: see [`recycle`]) are kept per thread, up to these limits, for the next
/// buffer that needs room: streams moving large messages allocate nothing per message,
/// and the allocator's heap does not shrink and grow again under them (glibc returns the
/// top of its heap to the kernel past 128 KiB free, and every page touched afterwards
/// faults: with 100 connections echoing 16 KiB WebSocket messages, that was 0.5 page
/// faults and 0.1 `brk` per message, and half the throughput). A loop thread holds at
/// most [`POOL_BYTES`] this way, whatever its number of connections.
const POOL_BUFFERS: usize = 128;
const POOL_BUFFER_MAX: usize = 256 * 1024;
pub(crate) const POOL_BYTES: usize = 4 * 1024 * 1024;

thread_local! {
    /// Where reads into an empty [`ReadBuffer`] land, shared by every stream of the
    /// thread (one loop per thread, one read at a time), grown to the largest chunk asked.
    static READ_SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Emptied large buffers kept for reuse (see [`recycle`]).
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { buffers: Vec::new(), held: 0 }) };
}

/// The pooled buffers and their total capacity.
struct Pool {
    buffers: Vec<Vec<u8>>,
    held: usize,
}

/// Offers a buffer whose bytes are no longer needed to this thread's pool (it is freed
/// if it is small, too large, or the pool is full).
pub(crate) fn recycle(mut buffer: Vec<u8>) {
    let capacity = buffer.capacity();
    if !(RETAINED_CAPACITY < capacity && capacity <= POOL_BUFFER_MAX) {
        return;
    }
    buffer.clear();
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        // The oldest buffers make room: the pool follows the sizes in use now.
        while !pool.buffers.is_empty()
            && (pool.buffers.len() >= POOL_BUFFERS || pool.held + capacity > POOL_BYTES)
        {
            let oldest = pool.buffers.remove(0);
            pool.held -= oldest.capacity();
        }
        pool.held += capacity;
        pool.buffers.push(buffer);
    });
}

/// An empty buffer with room for `needed` bytes: one from the pool if one fits (and is
/// at most twice the size, so a buffer stays proportional to what it holds), else a new
/// one of exactly that size.
fn with_room(needed: usize) -> Vec<u8> {
    if needed > RETAINED_CAPACITY {
        let pooled = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let fits = pool
                .buffers
                .iter()
                .position(|b| (needed..=needed.saturating_mul(2)).contains(&b.capacity()))?;
            let buffer = pool.buffers.swap_remove(fits);
            pool.held -= buffer.capacity();
            Some(buffer)
        });
        if let Ok(Some(buffer)) = pooled {
            return buffer;
        }
    }
    Vec::with_capacity(needed)
}

/// Empties `data`; more than [`RETAINED_CAPACITY`] goes to the pool ([`recycle`]).
fn clear_retaining_little(data: &mut Vec<u8>) {
    if data.capacity() > RETAINED_CAPACITY {
        recycle(std::mem::take(data));
    } else {
        data.clear();
    }
}

/// Reads once from `read`, up to `max` bytes, into the thread's scratch buffer, and hands
/// what arrived (if anything) to `append`.
fn read_via_scratch(
    max: usize,
    read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    append: impl FnOnce(&[u8]),
) -> io::Result<usize> {
    READ_SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < max {
            scratch.resize(max, 0);
        }
        let n = read(&mut scratch[..max])?;
        if n > 0 {
            append(&scratch[..n]);
        }
        Ok(n)
    })
}

/// The bytes a socket returned that no read took yet. Its record is allocated with the
/// first bytes a stream buffers and kept after (so that a stream does not allocate it
/// again per message): a stream that has buffered nothing, or reads into its callers'
/// buffers, holds one word (every idle connection holds one of these).
#[derive(Debug, Default)]
pub(crate) struct ReadBuffer {
    bytes: Option<Box<ReadBytes>>,
}

/// Unread bytes are `data[start..end]`; `data[end..]` is initialised spare room the next
/// socket read lands in. The region moves to the front only when the spare room runs out.
///
/// The offsets are 32 bits: a stream's limits keep the buffer under 4 GiB (see
/// `Limits`).
#[derive(Debug, Default)]
struct ReadBytes {
    data: Vec<u8>,
    start: u32,
    end: u32,
    /// Where the next delimiter scan starts (an absolute index into `data`): bytes before
    /// it were scanned already.
    scanned: u32,
}

/// An index into a buffer as stored.
fn offset(index: usize) -> u32 {
    u32::try_from(index).expect("a stream's limits keep its buffers under 4 GiB")
}

impl ReadBuffer {
    /// Number of unread bytes.
    pub(crate) fn len(&self) -> usize {
        self.bytes.as_ref().map_or(0, |bytes| bytes.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The unread bytes.
    pub(crate) fn unread(&self) -> &[u8] {
        self.bytes.as_ref().map_or(&[], |bytes| bytes.unread())
    }

    /// Reads once from `read`, up to `max` bytes, and appends what it returned. Returns
    /// what `read` returned.
    ///
    /// The buffer's memory stays proportional to what it holds. A read lands in place
    /// only when the room is already there or the buffer already holds `max` bytes or
    /// more (so the room made costs at most what is buffered); otherwise it lands in the
    /// thread's scratch buffer and only the bytes that arrived are appended. A partial
    /// line of `k` bytes therefore costs about `k`, not a read chunk.
    pub(crate) fn fill_from(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        match self.bytes.as_deref_mut() {
            Some(bytes) => bytes.fill_from(max, read),
            // Nothing allocated for a read that brings nothing (would block, end, error).
            None => read_via_scratch(max, read, |arrived| {
                self.bytes.get_or_insert_with(Box::default).append(arrived)
            }),
        }
    }

    /// Removes and returns the first `n` unread bytes.
    pub(crate) fn take(&mut self, n: usize) -> Vec<u8> {
        let Some(bytes) = self.bytes.as_deref_mut() else {
            return Vec::new();
        };
        bytes.take(n)
    }

    /// Takes every unread byte after the first `skip` as a vector: the buffer's own memory
    /// is handed over when it is not much larger than those bytes (no copy; the buffer is
    /// left empty, holding nothing), else they are copied out and the buffer is emptied
    /// (so a small last message does not keep a large read's memory).
    pub(crate) fn take_all(&mut self, skip: usize) -> Vec<u8> {
        let Some(bytes) = self.bytes.as_deref_mut() else {
            return Vec::new();
        };
        bytes.take_all(skip)
    }

    /// Copies the first `out.len()` unread bytes into `out` and removes them.
    pub(crate) fn take_into(&mut self, out: &mut [u8]) {
        if let Some(bytes) = self.bytes.as_deref_mut() {
            bytes.take_into(out);
        }
    }

    /// Drops the first `n` unread bytes; `n` is at most [`len`](Self::len).
    pub(crate) fn consume(&mut self, n: usize) {
        if let Some(bytes) = self.bytes.as_deref_mut() {
            bytes.consume(n);
        }
    }

    /// The offset (from the first unread byte) just past the first `delimiter`, scanning
    /// only bytes not scanned by an earlier call.
    pub(crate) fn find(&mut self, delimiter: &[u8]) -> Option<usize> {
        match self.bytes.as_deref_mut() {
            Some(bytes) => bytes.find(delimiter),
            None => delimiter.is_empty().then_some(0),
        }
    }

    /// The memory held, for tests.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.bytes.as_ref().map_or(0, |bytes| bytes.data.capacity())
    }
}

impl ReadBytes {
    fn start(&self) -> usize {
        self.start as usize
    }

    fn end(&self) -> usize {
        self.end as usize
    }

    fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn unread(&self) -> &[u8] {
        &self.data[self.start()..self.end()]
    }

    /// [`ReadBuffer::fill_from`].
    fn fill_from(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.start > 0 && self.data.len() - self.end() < max {
            self.compact();
        }
        let end = self.end();
        let room = self.data.len() - end;
        if room >= max || self.len() >= max {
            if room < max {
                self.data.resize(end + max, 0);
            }
            let n = read(&mut self.data[end..end + max])?;
            self.end = offset(end + n);
            return Ok(n);
        }
        read_via_scratch(max, read, |arrived| self.append(arrived))
    }

    /// Moves the unread bytes (and the scan mark) to the front.
    fn compact(&mut self) {
        let unread = self.start()..self.end();
        self.data.copy_within(unread, 0);
        self.scanned -= self.start.min(self.scanned);
        self.end -= self.start;
        self.start = 0;
    }

    /// Appends `bytes` after the unread ones, in the spare room first.
    fn append(&mut self, bytes: &[u8]) {
        if self.data.capacity() == 0 {
            self.data = with_room(bytes.len());
        }
        let end = self.end();
        let in_room = (self.data.len() - end).min(bytes.len());
        self.data[end..end + in_room].copy_from_slice(&bytes[..in_room]);
        self.data.extend_from_slice(&bytes[in_room..]);
        self.end = offset(end + bytes.len());
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let taken = self.data[self.start()..self.start() + n].to_vec();
        self.consume(n);
        taken
    }

    /// [`ReadBuffer::take_all`].
    fn take_all(&mut self, skip: usize) -> Vec<u8> {
        let wanted = self.len().saturating_sub(skip);
        if self.data.capacity() > 2 * wanted + RETAINED_CAPACITY {
            let taken = self.data[(self.start() + skip).min(self.end())..self.end()].to_vec();
            self.consume(self.len());
            return taken;
        }
        let mut data = std::mem::take(&mut self.data);
        data.truncate(self.end());
        data.drain(..(self.start() + skip).min(self.end()));
        self.start = 0;
        self.end = 0;
        self.scanned = 0;
        data
    }

    /// Copies the first `out.len()` unread bytes into `out` and removes them.
    fn take_into(&mut self, out: &mut [u8]) {
        out.copy_from_slice(&self.data[self.start()..self.start() + out.len()]);
        self.consume(out.len());
    }

    fn consume(&mut self, n: usize) {
        self.start = offset(self.start() + n);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            clear_retaining_little(&mut self.data);
        }
        self.scanned = self.scanned.max(self.start).min(self.end);
        if self.is_empty() {
            self.scanned = 0;
        }
    }

    /// [`ReadBuffer::find`].
    fn find(&mut self, delimiter: &[u8]) -> Option<usize> {
        let from = self.scanned.max(self.start) as usize;
        let window = &self.data[from..self.end()];
        let found = match delimiter {
            [] => Some(0),
            [byte] => window.iter().position(|b| b == byte),
            _ => window.windows(delimiter.len()).position(|w| w == delimiter),
        };
        match found {
            Some(at) => Some(from + at + delimiter.len() - self.start()),
            None => {
                // A delimiter may straddle the end: rescan its length minus one next time.
                let keep = offset(delimiter.len().saturating_sub(1));
                self.scanned = self.end.saturating_sub(keep).max(self.start);
                None
            }
        }
    }
}

/// Bytes the socket has not taken yet, and the running total that orders write
/// completions. Their record is allocated when the socket first leaves some, and kept
/// after: a stream whose writes the socket takes at once holds the total only.
#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    backlog: Option<Box<WriteBacklog>>,
    /// Bytes ever handed to the kernel.
    pub(super) total_written: u64,
}

/// `data[start..]` waits. Bytes handed to the kernel are dropped from the front once they
/// are as many as those waiting, so a buffer that never quite drains (a writer keeping it
/// above a low-water mark) holds at most about twice what waits, and `start` stays under
/// 4 GiB (the stream bounds what waits at 2 GiB, see `Limits`).
#[derive(Debug, Default)]
pub(crate) struct WriteBacklog {
    data: Vec<u8>,
    start: u32,
}

impl WriteBacklog {
    fn len(&self) -> usize {
        self.data.len() - self.start as usize
    }
}

impl WriteBuffer {
    pub(crate) fn len(&self) -> usize {
        self.backlog.as_ref().map_or(0, |backlog| backlog.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn pending(&self) -> &[u8] {
        self.backlog
            .as_ref()
            .map_or(&[], |backlog| &backlog.data[backlog.start as usize..])
    }

    /// Bytes ever queued: those handed to the kernel and those still here.
    pub(crate) fn total_queued(&self) -> u64 {
        self.total_written + self.len() as u64
    }

    /// Appends bytes the socket did not take (nothing for an empty slice: an empty
    /// buffer allocates nothing).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.reserve(bytes.len()).data.extend_from_slice(bytes);
        }
    }

    /// Makes room for `more` bytes about to be pushed (in one or several pieces), from
    /// the pool when the buffer holds nothing yet. Returns the backlog to push into.
    pub(crate) fn reserve(&mut self, more: usize) -> &mut WriteBacklog {
        let backlog = self.backlog.get_or_insert_with(Box::default);
        if backlog.data.capacity() == 0 {
            backlog.data = with_room(more);
        } else {
            if backlog.start as usize >= backlog.len() {
                // As many bytes sent as waiting: drop them (moving at most what waits).
                backlog.data.drain(..backlog.start as usize);
                backlog.start = 0;
            }
            backlog.data.reserve(more);
        }
        backlog
    }

    /// Marks `n` pending bytes as handed to the kernel.
    pub(crate) fn advance(&mut self, n: usize) {
        self.total_written += n as u64;
        let Some(backlog) = self.backlog.as_deref_mut() else {
            return;
        };
        backlog.start = offset(backlog.start as usize + n);
        if backlog.len() == 0 {
            clear_retaining_little(&mut backlog.data);
            backlog.start = 0;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.backlog = None;
    }

    /// The memory held, for tests.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.backlog
            .as_ref()
            .map_or(0, |backlog| backlog.data.capacity())
    }

    /// The bytes held, sent ones not yet dropped included, for tests.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.backlog
            .as_ref()
            .map_or(0, |backlog| backlog.data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(buffer: &mut ReadBuffer, bytes: &[u8]) {
        buffer
            .fill_from(bytes.len(), |room| {
                room[..bytes.len()].copy_from_slice(bytes);
                Ok(bytes.len())
            })
            .unwrap();
    }

    #[test]
    fn a_write_buffer_that_never_drains_holds_about_what_waits() {
        let mut buffer = WriteBuffer::default();
        let chunk = [7u8; 1000];
        // A writer keeping about 10 KB waiting while the socket takes 1 KB at a time.
        for _ in 0..10 {
            buffer.push(&chunk);
        }
        for _ in 0..10_000 {
            buffer.push(&chunk);
            buffer.advance(1000);
            assert_eq!(buffer.len(), 10_000);
            assert!(
                buffer.held() <= 2 * buffer.len() + chunk.len(),
                "{} bytes held for {} waiting",
                buffer.held(),
                buffer.len()
            );
        }
        assert_eq!(buffer.total_queued(), 10_010 * 1000);
        assert_eq!(buffer.pending(), &[7u8; 10_000][..]);
    }

    #[test]
    fn a_delimiter_split_across_reads_is_found_without_rescanning() {
        let mut buffer = ReadBuffer::default();
        fill(&mut buffer, b"hello\r");
        assert_eq!(buffer.find(b"\r\n"), None);
        assert_eq!(
            buffer.bytes.as_ref().unwrap().scanned,
            5,
            "only the last byte is scanned again"
        );
        fill(&mut buffer, b"\nworld");
        assert_eq!(buffer.find(b"\r\n"), Some(7));
        assert_eq!(buffer.take(7), b"hello\r\n");
        assert_eq!(buffer.unread(), b"world");
    }

    #[test]
    fn large_buffers_are_pooled_within_bounds_and_reused_when_they_fit() {
        let pooled = Vec::<u8>::with_capacity(16 * 1024);
        let address = pooled.as_ptr();
        recycle(pooled);
        // Too large for what is needed (over twice): a new buffer.
        let fresh = with_room(5 * 1024);
        assert_ne!(fresh.as_ptr(), address);
        let reused = with_room(16 * 1024 - 10);
        assert_eq!(reused.as_ptr(), address);
        assert!(reused.is_empty());
        // Small and huge buffers are not kept; the pool's bytes are bounded.
        recycle(Vec::with_capacity(1024));
        recycle(Vec::with_capacity(POOL_BUFFER_MAX + 1));
        assert_eq!(POOL.with(|p| p.borrow().buffers.len()), 0);
        for _ in 0..POOL_BUFFERS * 2 {
            recycle(Vec::with_capacity(POOL_BUFFER_MAX));
        }
        let held = POOL.with(|p| p.borrow().held);
        assert!(held <= POOL_BYTES, "{held}");
        assert_eq!(
            held,
            POOL.with(|p| p.borrow().buffers.iter().map(Vec::capacity).sum::<usize>())
        );
        // A full pool makes room for the newest buffer, dropping the oldest.
        let newest = Vec::<u8>::with_capacity(8 * 1024);
        let newest_at = newest.as_ptr();
        recycle(newest);
        let reused = with_room(8 * 1024);
        assert_eq!(reused.as_ptr(), newest_at);
        POOL.with(|p| {
            *p.borrow_mut() = Pool {
                buffers: Vec::new(),
                held: 0,
            }
        });
    }

    #[test]
    fn a_small_last_message_of_a_large_read_is_copied_out() {
        let mut buffer = ReadBuffer::default();
        let mut read = vec![b'f'; 64 * 1024];
        read.extend_from_slice(b"HDlast");
        fill(&mut buffer, &read);
        buffer.consume(64 * 1024);
        let taken = buffer.take_all(2);
        assert_eq!(taken, b"last");
        assert!(taken.capacity() < 1024, "{}", taken.capacity());
        assert!(buffer.is_empty());
    }

    #[test]
    fn take_all_hands_over_the_unread_bytes_after_a_skip() {
        let mut buffer = ReadBuffer::default();
        fill(&mut buffer, b"xxHEADpayload");
        buffer.consume(2);
        let taken = buffer.take_all(4);
        assert_eq!(taken, b"payload");
        assert!(buffer.is_empty());
        assert_eq!(buffer.capacity(), 0, "the memory went with the bytes");
        fill(&mut buffer, b"next");
        assert_eq!(buffer.unread(), b"next");
    }

    #[test]
    fn steady_state_reads_reuse_the_buffer() {
        let mut buffer = ReadBuffer::default();
        fill(&mut buffer, &[1; 100]);
        let capacity = buffer.capacity();
        for _ in 0..1000 {
            let _ = buffer.take(buffer.len());
            fill(&mut buffer, &[2; 100]);
        }
        assert_eq!(buffer.capacity(), capacity);
    }

    #[test]
    fn a_read_into_an_empty_buffer_keeps_only_what_arrived() {
        let mut buffer = ReadBuffer::default();
        let n = buffer
            .fill_from(64 * 1024, |room| {
                assert_eq!(room.len(), 64 * 1024, "the whole chunk is offered");
                room[..64].fill(7);
                Ok(64)
            })
            .unwrap();
        assert_eq!(n, 64);
        assert_eq!(buffer.unread(), &[7; 64]);
        assert!(buffer.capacity() < 1024, "not a 64 KiB chunk per stream");
    }

    /// Reads `bytes` offering a whole 64 KiB chunk, as the stream does.
    fn fill_chunk(buffer: &mut ReadBuffer, bytes: &[u8]) {
        buffer
            .fill_from(64 * 1024, |room| {
                room[..bytes.len()].copy_from_slice(bytes);
                Ok(bytes.len())
            })
            .unwrap();
    }

    #[test]
    fn a_partial_line_growing_byte_by_byte_costs_about_its_length() {
        let mut buffer = ReadBuffer::default();
        for i in 0..1000 {
            fill_chunk(&mut buffer, b"x");
            assert_eq!(buffer.find(b"\n"), None);
            assert_eq!(buffer.len(), i + 1);
            assert!(
                buffer.capacity() <= 2 * (i + 1) + 8,
                "{} bytes held in {} of capacity",
                i + 1,
                buffer.capacity()
            );
        }
        fill_chunk(&mut buffer, b"\n");
        assert_eq!(buffer.find(b"\n"), Some(1001));
    }

    #[test]
    fn a_large_buffer_reads_in_place_with_room_proportional_to_what_it_holds() {
        let mut buffer = ReadBuffer::default();
        let chunk = vec![5u8; 64 * 1024];
        fill_chunk(&mut buffer, &chunk);
        for held in 1..8 {
            let offered = buffer
                .fill_from(64 * 1024, |room| {
                    room.fill(5);
                    Ok(room.len())
                })
                .unwrap();
            assert_eq!(offered, 64 * 1024);
            assert_eq!(buffer.len(), (held + 1) * 64 * 1024);
            assert!(buffer.capacity() <= 2 * buffer.len() + 64 * 1024);
        }
        assert!(buffer.unread().iter().all(|&b| b == 5));
    }

    #[test]
    fn an_emptied_read_buffer_gives_large_capacity_back() {
        let mut buffer = ReadBuffer::default();
        fill(&mut buffer, &[1; 10]);
        fill(&mut buffer, &[2; 100 * 1024]);
        assert!(buffer.capacity() > RETAINED_CAPACITY);
        let _ = buffer.take(buffer.len() - 1);
        assert!(
            buffer.capacity() > RETAINED_CAPACITY,
            "one byte still unread"
        );
        let _ = buffer.take(1);
        assert_eq!(buffer.capacity(), 0);
    }

    #[test]
    fn an_emptied_write_buffer_gives_large_capacity_back_and_keeps_small() {
        let mut buffer = WriteBuffer::default();
        buffer.push(&[]);
        assert!(buffer.backlog.is_none(), "nothing pushed, nothing held");
        buffer.push(&[1; 100]);
        buffer.advance(100);
        let small = buffer.capacity();
        assert!(small >= 100);
        buffer.push(&[2; 100]);
        assert_eq!(buffer.capacity(), small, "reused for the next message");
        buffer.advance(100);
        buffer.push(&[3; 1 << 20]);
        buffer.advance(1 << 20);
        assert!(buffer.is_empty());
        assert_eq!(buffer.capacity(), 0);
        assert_eq!(buffer.total_written, 200 + (1 << 20));
    }

    #[test]
    fn a_read_buffer_allocates_its_record_with_its_first_bytes() {
        let mut buffer = ReadBuffer::default();
        assert_eq!(buffer.find(b"\n"), None);
        assert_eq!(buffer.find(b""), Some(0));
        assert!(buffer.take(0).is_empty() && buffer.take_all(0).is_empty());
        buffer.consume(0);
        let would_block = buffer.fill_from(64, |_| Err(io::ErrorKind::WouldBlock.into()));
        assert!(would_block.is_err());
        assert_eq!(
            buffer.fill_from(64, |_| Ok(0)).unwrap(),
            0,
            "the peer's end"
        );
        assert!(buffer.bytes.is_none(), "reads of nothing allocate nothing");
        fill(&mut buffer, b"line\n");
        assert!(buffer.bytes.is_some());
        assert_eq!(buffer.take_all(0), b"line\n");
        assert_eq!(
            buffer.capacity(),
            0,
            "the memory was handed over with the bytes"
        );
        assert!(
            buffer.bytes.is_some(),
            "the record stays for the next message"
        );
    }

    #[test]
    fn compaction_keeps_unread_bytes_and_the_scan_mark() {
        let mut buffer = ReadBuffer::default();
        fill(&mut buffer, b"abcdef");
        let _ = buffer.take(4);
        assert_eq!(buffer.find(b"\n"), None);
        fill(&mut buffer, b"gh\n");
        assert_eq!(buffer.unread(), b"efgh\n");
        assert_eq!(buffer.find(b"\n"), Some(5));
    }
}
