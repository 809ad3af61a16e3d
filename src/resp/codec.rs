//! tokio-util codec for whole frames: used by the proxy's backend side and by tests.

use super::frame::{frame_len, Frame, FrameError};
use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

#[derive(Debug, Default, Clone, Copy)]
pub struct RespCodec;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Frame(#[from] FrameError),
}

impl Decoder for RespCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        if src.is_empty() {
            return Ok(None);
        }
        // Find the boundary first so the frame is parsed once, from a frozen slice: bulk payloads
        // stay zero-copy.
        match frame_len(src)? {
            None => Ok(None),
            Some(used) => {
                let whole = src.split_to(used).freeze();
                let (frame, _) = Frame::parse(&whole)?.expect("frame was complete");
                Ok(Some(frame))
            }
        }
    }
}

impl Encoder<Frame> for RespCodec {
    type Error = CodecError;
    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.encode(dst);
        Ok(())
    }
}
