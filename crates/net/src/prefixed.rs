//! Length-prefixed messages on a libp2p stream: an unsigned varint (the multiformats
//! `unsigned-varint`) giving the length, then that many bytes. Both the WebRTC signalling
//! protocol and the direct links' frames are carried this way.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Writes one message and flushes it.
pub async fn write(io: &mut (impl AsyncWrite + Unpin), message: &[u8]) -> io::Result<()> {
    let mut len = unsigned_varint::encode::usize_buffer();
    io.write_all(unsigned_varint::encode::usize(message.len(), &mut len))
        .await?;
    io.write_all(message).await?;
    io.flush().await
}

/// Reads one message of at most `max` bytes. `Ok(None)` at a clean end of the stream (before a
/// length); an error for a message over `max`, a malformed length, or an end inside a message.
pub async fn read(io: &mut (impl AsyncRead + Unpin), max: usize) -> io::Result<Option<Vec<u8>>> {
    let mut len_bytes = [0u8; 10];
    let mut n = 0;
    let len = loop {
        if n == len_bytes.len() {
            return Err(invalid("the length prefix is too long"));
        }
        match io.read(&mut len_bytes[n..=n]).await? {
            0 if n == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => n += 1,
        }
        if len_bytes[n - 1] & 0x80 == 0 {
            let (len, _) = unsigned_varint::decode::usize(&len_bytes[..n])
                .map_err(|e| invalid(&format!("bad length prefix: {e}")))?;
            break len;
        }
    };
    if len > max {
        return Err(invalid(&format!(
            "a message of {len} bytes (at most {max})"
        )));
    }
    let mut message = vec![0; len];
    io.read_exact(&mut message).await?;
    Ok(Some(message))
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;

    #[test]
    fn reads_back_what_it_wrote_and_refuses_oversize_or_cut_messages() {
        let mut out = Cursor::new(Vec::new());
        block_on(async {
            write(&mut out, b"hello").await.unwrap();
            write(&mut out, &[7u8; 300]).await.unwrap();
        });
        let bytes = out.into_inner();
        assert_eq!(&bytes[..6], b"\x05hello");
        assert_eq!(&bytes[6..8], &[0xac, 0x02], "300 as a varint");
        let mut input = Cursor::new(bytes.clone());
        block_on(async {
            assert_eq!(read(&mut input, 300).await.unwrap().unwrap(), b"hello");
            assert_eq!(
                read(&mut input, 300).await.unwrap().unwrap(),
                vec![7u8; 300]
            );
            assert!(read(&mut input, 300).await.unwrap().is_none(), "clean end");
        });
        let mut small = Cursor::new(bytes[6..].to_vec());
        let err = block_on(read(&mut small, 299)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut cut = Cursor::new(bytes[..4].to_vec());
        let err = block_on(read(&mut cut, 300)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut endless = Cursor::new(vec![0xff; 12]);
        assert!(block_on(read(&mut endless, usize::MAX)).is_err());
    }
}
