//! RESP2/RESP3: the request parser a server runs on client input, the reply writer, whole-frame
//! parsing/encoding for peers' replies, and a tokio-util codec.

pub mod codec;
pub mod frame;
pub mod reply;
pub mod request;

pub use codec::RespCodec;
pub use frame::{frame_len, Frame, FrameError, FrameScanner};
pub use reply::Reply;
pub use request::{Limits, Parsed, ProtocolError, RequestParser};
