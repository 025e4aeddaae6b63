//! Zips made while they download: a job's frames (or compositor files) read from storage one
//! after the other and written out as a stored zip (frames are compressed images already),
//! streamed to the client. Nothing is kept: the server stores each output once, and an
//! archive costs no disk, no finalizing time, and no copy of any frame.

use std::io::Write;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::blobs::Blobs;

/// Chunks in flight between the zip writer and the response: a slow client holds the writer.
const IN_FLIGHT: usize = 8;
/// Bytes the writer gathers before it hands a chunk on.
const CHUNK: usize = 256 * 1024;

/// One file of an archive.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Its path in the archive.
    pub(crate) name: String,
    /// The stored object.
    pub(crate) key: String,
    /// Its size (past 4 GiB a file needs ZIP64 fields).
    pub(crate) size: u64,
}

/// The zip of `entries`, as a stream of bytes. A file that cannot be read ends the stream
/// with an error (the client sees a broken download, never a zip missing a file).
pub(crate) fn stream(blobs: Blobs, entries: Vec<Entry>) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let (sender, receiver) = mpsc::channel(IN_FLIGHT);
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(CHUNK, Sender(sender.clone()));
        if let Err(error) = write(&handle, &blobs, &entries, out) {
            let _ = sender.blocking_send(Err(std::io::Error::other(format!("{error:#}"))));
        }
    });
    futures::stream::unfold(receiver, |mut receiver| async move { receiver.recv().await.map(|it| (it, receiver)) })
}

fn write(handle: &tokio::runtime::Handle, blobs: &Blobs, entries: &[Entry], out: impl Write) -> anyhow::Result<()> {
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new_stream(out);
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for entry in entries {
        zip.start_file(entry.name.as_str(), stored.large_file(entry.size >= u64::from(u32::MAX)))?;
        let (_, stream) = handle
            .block_on(blobs.get_stream(&entry.key))?
            .ok_or_else(|| anyhow::anyhow!("{} is missing from storage", entry.key))?;
        let mut stream = Box::pin(stream);
        while let Some(chunk) = handle.block_on(stream.next()) {
            zip.write_all(&chunk?)?;
        }
    }
    zip.finish()?.into_inner().flush()?;
    Ok(())
}

/// The writing end: each write becomes a chunk of the response; a closed response (the client
/// went away) stops the writer.
struct Sender(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for Sender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the download was closed"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Names made unique within an archive (a zip refuses a name twice): a second `a.png` becomes
/// `a (2).png`.
pub(crate) fn unique_names(entries: &mut [Entry]) {
    let mut seen = std::collections::HashSet::new();
    for entry in entries.iter_mut() {
        let mut name = entry.name.clone();
        let mut n = 2;
        while !seen.insert(name.clone()) {
            name = match entry.name.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem} ({n}).{ext}"),
                None => format!("{} ({n})", entry.name),
            };
            n += 1;
        }
        entry.name = name;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_archive_streams_every_file_in_order_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::local(dir.path()).unwrap();
        let mut entries = Vec::new();
        for n in 1..=3u8 {
            let key = format!("jobs/x/{n}.png");
            let bytes = vec![n; 300_000 * usize::from(n)];
            blobs.put(&key, bytes.clone()).await.unwrap();
            entries.push(Entry { name: "frame.png".into(), key, size: bytes.len() as u64 });
        }
        unique_names(&mut entries);
        let names: Vec<&str> = entries.iter().map(|it| it.name.as_str()).collect();
        assert_eq!(names, ["frame.png", "frame (2).png", "frame (3).png"]);
        let chunks: Vec<Bytes> = stream(blobs.clone(), entries.clone()).map(|it| it.unwrap()).collect().await;
        let zip: Vec<u8> = chunks.concat();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        assert_eq!(archive.len(), 3);
        let mut second = Vec::new();
        std::io::Read::read_to_end(&mut archive.by_name("frame (2).png").unwrap(), &mut second).unwrap();
        assert_eq!(second, vec![2u8; 600_000]);

        // A file gone from storage breaks the download instead of leaving it out.
        entries.push(Entry { name: "gone.png".into(), key: "jobs/x/gone.png".into(), size: 1 });
        let results: Vec<_> = stream(blobs, entries).collect().await;
        assert!(results.last().unwrap().is_err());
    }
}
