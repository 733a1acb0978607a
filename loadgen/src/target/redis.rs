//! Redis over RESP2, one plain TCP connection per worker.
//!
//! - read: `GET key`; a nil bulk is "not found".
//! - update: `SET key value`, or `SET key value EX ttl`.
//! - rmw: `WATCH key`, `GET key`, then `MULTI` / `SET key value` / `EXEC` pipelined in one
//!   write; a nil `EXEC` reply (the watched key changed) is a conflict.
//!
//! `--consistency` does not apply (a single Redis primary) and is ignored.

use super::{OpError, OpResult, Outcome, Target};
use crate::resp::{self, Frame};
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One lazily opened RESP connection.
#[derive(Debug)]
pub struct RespConn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    read_buf: BytesMut,
    write_buf: Vec<u8>,
}

impl RespConn {
    /// A connection to `addr`, opened on first use.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            read_buf: BytesMut::with_capacity(16 * 1024),
            write_buf: Vec::with_capacity(4 * 1024),
        }
    }

    /// Drops the connection; the next call reconnects.
    pub fn reset(&mut self) {
        self.stream = None;
        self.read_buf.clear();
    }

    /// Sends `commands` in one write (pipelined) and returns one reply per command.
    pub async fn call(&mut self, commands: &[&[&[u8]]]) -> Result<Vec<Frame>, OpError> {
        let res = self.call_inner(commands).await;
        if matches!(&res, Err(e) if e.poisons_connection()) {
            self.reset();
        }
        res
    }

    async fn call_inner(&mut self, commands: &[&[&[u8]]]) -> Result<Vec<Frame>, OpError> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr)
                .await
                .map_err(|_| OpError::Connect)?;
            s.set_nodelay(true).map_err(|_| OpError::Connect)?;
            self.stream = Some(s);
            self.read_buf.clear();
        }
        let stream = self.stream.as_mut().ok_or(OpError::Connect)?;
        self.write_buf.clear();
        for c in commands {
            resp::encode_command(&mut self.write_buf, c);
        }
        stream
            .write_all(&self.write_buf)
            .await
            .map_err(|_| OpError::Io)?;
        let mut replies = Vec::with_capacity(commands.len());
        while replies.len() < commands.len() {
            match resp::decode(&mut self.read_buf).map_err(|_| OpError::Protocol)? {
                Some(f) => replies.push(f),
                None => {
                    let n = stream
                        .read_buf(&mut self.read_buf)
                        .await
                        .map_err(|_| OpError::Io)?;
                    if n == 0 {
                        return Err(OpError::Io);
                    }
                }
            }
        }
        Ok(replies)
    }
}

fn redis_error(msg: &str) -> OpError {
    OpError::Redis {
        prefix: msg.split_whitespace().next().unwrap_or("ERR").to_owned(),
    }
}

/// Maps a reply that should be `+OK`/`+QUEUED` (any simple string).
fn expect_simple(f: &Frame) -> Result<(), OpError> {
    match f {
        Frame::Simple(_) => Ok(()),
        Frame::Error(e) => Err(redis_error(e)),
        _ => Err(OpError::Protocol),
    }
}

/// One worker's Redis client.
#[derive(Debug)]
pub struct RedisTarget {
    conn: RespConn,
}

impl RedisTarget {
    /// A client for the server at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            conn: RespConn::new(addr),
        }
    }
}

impl Target for RedisTarget {
    async fn read(&mut self, key: &str) -> OpResult {
        let replies = self.conn.call(&[&[b"GET", key.as_bytes()]]).await?;
        match replies.first() {
            Some(Frame::Bulk(_)) => Ok(Outcome::Ok),
            Some(Frame::Nil) => Ok(Outcome::NotFound),
            Some(Frame::Error(e)) => Err(redis_error(e)),
            _ => Err(OpError::Protocol),
        }
    }

    async fn update(&mut self, key: &str, value: Bytes, ttl_secs: Option<u32>) -> OpResult {
        let ttl = ttl_secs.map(|t| t.to_string());
        let replies = match &ttl {
            Some(t) => {
                self.conn
                    .call(&[&[b"SET", key.as_bytes(), &value, b"EX", t.as_bytes()]])
                    .await?
            }
            None => self.conn.call(&[&[b"SET", key.as_bytes(), &value]]).await?,
        };
        expect_simple(replies.first().ok_or(OpError::Protocol)?)?;
        Ok(Outcome::Ok)
    }

    async fn rmw(&mut self, key: &str, value: Bytes) -> OpResult {
        let k = key.as_bytes();
        let res = async {
            let replies = self.conn.call(&[&[b"WATCH", k], &[b"GET", k]]).await?;
            expect_simple(replies.first().ok_or(OpError::Protocol)?)?;
            if let Some(Frame::Error(e)) = replies.get(1) {
                return Err(redis_error(e));
            }
            let replies = self
                .conn
                .call(&[&[b"MULTI"], &[b"SET", k, &value], &[b"EXEC"]])
                .await?;
            for r in replies.iter().take(2) {
                expect_simple(r)?;
            }
            match replies.get(2) {
                Some(Frame::Array(_)) => Ok(Outcome::Ok),
                Some(Frame::NilArray) => Ok(Outcome::Conflict),
                Some(Frame::Error(e)) => Err(redis_error(e)),
                _ => Err(OpError::Protocol),
            }
        }
        .await;
        if res.is_err() {
            // A failed step may leave a WATCH or an open MULTI on the connection: start over.
            self.conn.reset();
        }
        res
    }

    fn reset(&mut self) {
        self.conn.reset();
    }
}
