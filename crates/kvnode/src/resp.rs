//! The RESP front door: Redis's protocol (RESP2) on a port of its own,
//! translated into kv-wire [`Request`]s and answered through the same
//! [`Service::client`] the native port uses, so any node serves any key with
//! the configured quorum.
//!
//! A command arrives as an array of bulk strings, or as an inline line:
//!
//! ```text
//!   *<argc>\r\n  then argc times  $<len>\r\n<len bytes>\r\n
//!   <word> <word> ...\r\n                      (inline, for telnet)
//! ```
//!
//! Every length is checked before anything is reserved: a bulk over
//! [`Limits::value_len_max`] (or the key limit, if larger), a command whose
//! declared bytes pass [`Limits::frame_len_max`], more than [`ARGS_MAX`]
//! arguments, a header line past [`HEADER_LEN_MAX`] or an inline command
//! past [`INLINE_LEN_MAX`] get `-ERR Protocol error: ...` and a close.
//!
//! Commands on one connection run one at a time, in order, so pipelined
//! answers come back in order; the answers to everything already buffered
//! are written in one batch. Idle, partial-command and write timeouts are
//! the native port's.
//!
//! Siblings: `GET` answers the *last* sibling in the read's order and counts
//! the event in [`SIBLING_GETS_TOTAL`]; `KV.GET key` answers
//! `[context, sibling1, sibling2, ...]` and `KV.SET key value context`
//! writes with that context (an empty context writes blind). `SET` reads
//! the key first (default R) and writes with the read's context, so it
//! supersedes what it saw; two concurrent SETs become siblings, never lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

use kv_wire::client::{ErrorCode, ErrorReply, Request, Response};

use crate::config::Limits;
use crate::server::{Service, accept, check_request, stopped};

/// Plain `GET`s that found siblings and answered only the last one.
pub static SIBLING_GETS_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Bound on the arguments of one command.
pub const ARGS_MAX: usize = 64 * 1024;
/// Bound on a `*<n>` or `$<n>` header line, CRLF included.
pub const HEADER_LEN_MAX: usize = 32;
/// Bound on an inline command, CRLF included (Redis's own bound).
pub const INLINE_LEN_MAX: usize = 64 * 1024;
/// Bytes reserved for each read from the socket.
const READ_CHUNK_BYTES: usize = 8 * 1024;
/// Answer bytes gathered before they are written even if more commands
/// are buffered.
const WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;

/// What the front door tells clients it is, in `HELLO` and `INFO`.
const REDIS_VERSION: &str = "7.0.0";

/// Why a command could not be parsed; the stream cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A header or a bulk is not what RESP allows.
    #[error("Protocol error: {0}")]
    Malformed(String),
    /// A declared length is over a limit.
    #[error("Protocol error: {what} of {len} exceeds the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Bounds the parser applies.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Largest bulk string.
    pub bulk_len_max: usize,
    /// Largest sum of a command's bulk lengths.
    pub command_len_max: usize,
}

impl ParseLimits {
    /// The native port's limits, applied to RESP.
    pub fn from_limits(limits: &Limits) -> Self {
        Self {
            bulk_len_max: limits.value_len_max.max(limits.key_len_max),
            command_len_max: limits.frame_len_max,
        }
    }
}

/// Takes one whole command off the front of `buf`: `Ok(None)` when it is
/// not complete yet (nothing is consumed), an error when it can never be.
pub fn parse_command(
    buf: &mut BytesMut,
    limits: ParseLimits,
) -> Result<Option<Vec<Bytes>>, ParseError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != b'*' {
        return parse_inline(buf);
    }
    let Some((argc, mut at)) = header(buf, 0, b'*')? else {
        return Ok(None);
    };
    if argc > ARGS_MAX {
        return Err(ParseError::TooLarge {
            what: "argument count",
            len: argc,
            max: ARGS_MAX,
        });
    }
    // First pass: check every header and find where the command ends.
    let mut spans = Vec::with_capacity(argc.min(64));
    let mut declared = 0usize;
    for _ in 0..argc {
        if at >= buf.len() {
            return Ok(None);
        }
        if buf[at] != b'$' {
            return Err(ParseError::Malformed(format!(
                "expected '$', got '{}'",
                char::from(buf[at]).escape_default()
            )));
        }
        let Some((len, start)) = header(buf, at, b'$')? else {
            return Ok(None);
        };
        if len > limits.bulk_len_max {
            return Err(ParseError::TooLarge {
                what: "bulk length",
                len,
                max: limits.bulk_len_max,
            });
        }
        declared = declared.saturating_add(len);
        if declared > limits.command_len_max {
            return Err(ParseError::TooLarge {
                what: "command length",
                len: declared,
                max: limits.command_len_max,
            });
        }
        let end = start + len;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ParseError::Malformed("bulk not ended by CRLF".to_owned()));
        }
        spans.push((start, end));
        at = end + 2;
    }
    let whole = buf.split_to(at).freeze();
    Ok(Some(
        spans.into_iter().map(|(s, e)| whole.slice(s..e)).collect(),
    ))
}

/// Reads `<kind><decimal>\r\n` at `at`; answers the number and where the
/// line ends.
fn header(buf: &[u8], at: usize, kind: u8) -> Result<Option<(usize, usize)>, ParseError> {
    debug_assert_eq!(buf[at], kind);
    let window = &buf[at..buf.len().min(at + HEADER_LEN_MAX)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        if window.len() >= HEADER_LEN_MAX {
            return Err(ParseError::Malformed(format!(
                "'{}' header longer than {HEADER_LEN_MAX} bytes",
                char::from(kind)
            )));
        }
        return Ok(None);
    };
    let digits = &window[1..nl];
    let digits = digits.strip_suffix(b"\r").ok_or_else(|| {
        ParseError::Malformed(format!("'{}' header not ended by CRLF", char::from(kind)))
    })?;
    let n = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
        .ok_or_else(|| {
            ParseError::Malformed(format!(
                "invalid {} length",
                if kind == b'*' { "multibulk" } else { "bulk" }
            ))
        })?;
    Ok(Some((n, at + nl + 1)))
}

/// An inline command: words separated by spaces, up to a newline.
fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ParseError> {
    let window = &buf[..buf.len().min(INLINE_LEN_MAX)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        if window.len() >= INLINE_LEN_MAX {
            return Err(ParseError::TooLarge {
                what: "inline command without a newline",
                len: window.len(),
                max: INLINE_LEN_MAX,
            });
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1).freeze();
    let words = line[..nl]
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .map(Bytes::copy_from_slice)
        .collect();
    Ok(Some(words))
}

/// One RESP2 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text`
    Simple(&'static str),
    /// `-text`; the text starts with its error prefix (`ERR`, `NOPROTO`).
    Error(String),
    /// `:n`
    Int(i64),
    /// `$len` and the bytes.
    Bulk(Bytes),
    /// `$-1`
    Nil,
    /// `*n` and the elements.
    Array(Vec<Reply>),
}

impl Reply {
    fn err(message: impl Into<String>) -> Reply {
        Reply::Error(format!("ERR {}", message.into()))
    }

    fn bulk(text: impl Into<Bytes>) -> Reply {
        Reply::Bulk(text.into())
    }

    /// Appends the answer's bytes to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Reply::Simple(s) => line(out, b'+', s.as_bytes()),
            // CR or LF inside an error would break the stream.
            Reply::Error(e) => line(out, b'-', e.replace(['\r', '\n'], " ").as_bytes()),
            Reply::Int(n) => line(out, b':', n.to_string().as_bytes()),
            Reply::Bulk(b) => {
                line(out, b'$', b.len().to_string().as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
            Reply::Array(items) => {
                line(out, b'*', items.len().to_string().as_bytes());
                for item in items {
                    item.encode(out);
                }
            }
        }
    }
}

fn line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.extend_from_slice(&[kind]);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// What one connection remembers between commands.
#[derive(Debug, Default)]
pub struct Session {
    name: Option<Bytes>,
    /// Set by `QUIT`: answer, then close.
    pub quit: bool,
}

/// Runs one command through `service`.
pub async fn execute(
    args: Vec<Bytes>,
    service: &dyn Service,
    limits: &Limits,
    session: &mut Session,
) -> Reply {
    let Some(name) = args.first() else {
        // An empty inline line: Redis answers nothing; an empty reply
        // would break the pipeline's order, so say so.
        return Reply::err("empty command");
    };
    let given = String::from_utf8_lossy(name).into_owned();
    let name = given.to_ascii_uppercase();
    let args = &args[1..];
    let store = Store { service, limits };
    match (name.as_str(), args.len()) {
        ("PING", 0) => Reply::Simple("PONG"),
        ("PING", 1) => Reply::Bulk(args[0].clone()),
        ("ECHO", 1) => Reply::Bulk(args[0].clone()),
        ("QUIT", _) => {
            session.quit = true;
            Reply::Simple("OK")
        }
        ("GET", 1) => store.get_one(&args[0]).await,
        ("SET", n) if n >= 2 => {
            if let Some(option) = args.get(2) {
                return unsupported_set_option(option);
            }
            store.set(&args[0], &args[1]).await
        }
        ("DEL", n) if n >= 1 => {
            let mut count = 0;
            for key in args {
                match store.delete_existing(key).await {
                    Ok(true) => count += 1,
                    Ok(false) => {}
                    Err(e) => return e,
                }
            }
            Reply::Int(count)
        }
        ("EXISTS", n) if n >= 1 => {
            let mut count = 0;
            for key in args {
                match store.read(key).await {
                    Ok(Some(_)) => count += 1,
                    Ok(None) => {}
                    Err(e) => return e,
                }
            }
            Reply::Int(count)
        }
        ("MGET", n) if n >= 1 => {
            // The answer is bounded like a frame: the same large key asked
            // many times must not hold the node's memory.
            let mut values = Vec::with_capacity(n.min(1024));
            let mut bytes = 0usize;
            for key in args {
                let value = store.get_one(key).await;
                match &value {
                    // A failed key fails the whole MGET, as an error inside
                    // an array would surprise clients.
                    Reply::Error(_) => return value,
                    Reply::Bulk(b) => bytes = bytes.saturating_add(b.len()),
                    _ => {}
                }
                if bytes > limits.frame_len_max {
                    return Reply::err(format!(
                        "the MGET answer exceeds frame_len_max ({} bytes); ask for fewer keys",
                        limits.frame_len_max
                    ));
                }
                values.push(value);
            }
            Reply::Array(values)
        }
        ("MSET", n) if n >= 2 && n % 2 == 0 => {
            for pair in args.chunks_exact(2) {
                let reply = store.set(&pair[0], &pair[1]).await;
                if reply != Reply::Simple("OK") {
                    return reply;
                }
            }
            Reply::Simple("OK")
        }
        ("KV.GET", 1) => match store.read(&args[0]).await {
            Ok(Some((siblings, context))) => {
                let mut items = vec![Reply::Bulk(context)];
                items.extend(siblings.into_iter().map(Reply::Bulk));
                Reply::Array(items)
            }
            Ok(None) => match store.context(&args[0]).await {
                Ok(context) => Reply::Array(vec![Reply::Bulk(context)]),
                Err(e) => e,
            },
            Err(e) => e,
        },
        ("KV.SET", 3) => {
            let context = (!args[2].is_empty()).then(|| args[2].clone());
            store.put(&args[0], &args[1], context).await
        }
        ("SELECT", 1) if &args[0][..] == b"0" => Reply::Simple("OK"),
        ("SELECT", 1) => Reply::err("DB index is out of range: this store has only db 0"),
        ("HELLO", _) => hello(args),
        ("AUTH", 1 | 2) => Reply::err(
            "AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ),
        ("CLIENT", n) if n >= 1 => client(args, session),
        ("INFO", _) => Reply::bulk(format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\n\
             server_name:kvnode\r\nkvnode_version:{}\r\n",
            env!("CARGO_PKG_VERSION")
        )),
        ("COMMAND", 0) => Reply::Array(Vec::new()),
        ("COMMAND", _) => match String::from_utf8_lossy(&args[0])
            .to_ascii_uppercase()
            .as_str()
        {
            "DOCS" | "INFO" => Reply::Array(Vec::new()),
            "COUNT" => Reply::Int(0),
            other => Reply::err(format!("unknown subcommand '{other}' of COMMAND")),
        },
        ("DBSIZE", 0) => {
            Reply::err("DBSIZE is not supported: a node cannot count the cluster's keys honestly")
        }
        (
            "GET" | "SET" | "DEL" | "EXISTS" | "MGET" | "MSET" | "KV.GET" | "KV.SET" | "PING"
            | "ECHO" | "SELECT" | "AUTH" | "CLIENT" | "DBSIZE",
            _,
        ) => Reply::err(format!(
            "wrong number of arguments for '{}' command",
            name.to_ascii_lowercase()
        )),
        _ => Reply::err(format!("unknown command '{given}'")),
    }
}

fn unsupported_set_option(option: &Bytes) -> Reply {
    let option = String::from_utf8_lossy(option).to_ascii_uppercase();
    let why = match option.as_str() {
        "EX" | "PX" | "EXAT" | "PXAT" | "KEEPTTL" => "the store has no TTLs",
        "NX" | "XX" => "the store has no atomic conditional writes",
        "GET" => "SET ... GET is not supported; GET then SET instead",
        _ => return Reply::Error("ERR syntax error".to_owned()),
    };
    Reply::err(format!("SET option '{option}' is not supported: {why}"))
}

fn hello(args: &[Bytes]) -> Reply {
    match args.first().map(|v| &v[..]) {
        None | Some(b"2") => {}
        Some(b"3") => {
            return Reply::Error("NOPROTO this server speaks RESP2 only".to_owned());
        }
        Some(_) => {
            return Reply::Error("NOPROTO unsupported protocol version".to_owned());
        }
    }
    if args.len() > 1 {
        let option = String::from_utf8_lossy(&args[1]).to_ascii_uppercase();
        if option == "AUTH" {
            return Reply::err(
                "AUTH <password> called without any password configured for the default user",
            );
        }
    }
    Reply::Array(vec![
        Reply::bulk("server"),
        Reply::bulk("kvnode"),
        Reply::bulk("version"),
        Reply::bulk(REDIS_VERSION),
        Reply::bulk("proto"),
        Reply::Int(2),
        Reply::bulk("id"),
        Reply::Int(0),
        Reply::bulk("mode"),
        Reply::bulk("standalone"),
        Reply::bulk("role"),
        Reply::bulk("master"),
        Reply::bulk("modules"),
        Reply::Array(Vec::new()),
    ])
}

fn client(args: &[Bytes], session: &mut Session) -> Reply {
    match String::from_utf8_lossy(&args[0])
        .to_ascii_uppercase()
        .as_str()
    {
        "SETNAME" if args.len() == 2 => {
            session.name = (!args[1].is_empty()).then(|| args[1].clone());
            Reply::Simple("OK")
        }
        "GETNAME" => session.name.clone().map_or(Reply::Nil, Reply::Bulk),
        "SETINFO" => Reply::Simple("OK"),
        "ID" => Reply::Int(0),
        other => Reply::err(format!("unknown subcommand '{other}' of CLIENT")),
    }
}

/// The store as RESP commands use it: requests checked against the native
/// port's limits, then sent to the service.
struct Store<'a> {
    service: &'a dyn Service,
    limits: &'a Limits,
}

impl Store<'_> {
    async fn call(&self, req: Request) -> Response {
        match check_request(&req, self.limits) {
            Ok(()) => self.service.client(req).await,
            Err(e) => Response::Error(e),
        }
    }

    /// The siblings and context of a key, `None` when it holds nothing.
    async fn read(&self, key: &Bytes) -> Result<Option<(Vec<Bytes>, Bytes)>, Reply> {
        match self.call(get(key)).await {
            Response::Value {
                siblings, context, ..
            } => Ok(Some((siblings, context))),
            Response::NotFound { .. } => Ok(None),
            other => Err(error_reply(other, false)),
        }
    }

    /// The context of a read, whatever it found.
    async fn context(&self, key: &Bytes) -> Result<Bytes, Reply> {
        match self.call(get(key)).await {
            Response::Value { context, .. } | Response::NotFound { context } => Ok(context),
            other => Err(error_reply(other, false)),
        }
    }

    /// `GET`: the last sibling, by the documented rule.
    async fn get_one(&self, key: &Bytes) -> Reply {
        match self.read(key).await {
            Ok(Some((mut siblings, _))) => {
                if siblings.len() > 1 {
                    SIBLING_GETS_TOTAL.fetch_add(1, Ordering::Relaxed);
                }
                siblings.pop().map_or(Reply::Nil, Reply::Bulk)
            }
            Ok(None) => Reply::Nil,
            Err(e) => e,
        }
    }

    /// `SET`: a read, then a write with its context.
    async fn set(&self, key: &Bytes, value: &Bytes) -> Reply {
        match self.context(key).await {
            Ok(context) => self.put(key, value, Some(context)).await,
            Err(e) => e,
        }
    }

    async fn put(&self, key: &Bytes, value: &Bytes, context: Option<Bytes>) -> Reply {
        let req = Request::Put {
            key: key.clone(),
            value: value.clone(),
            context,
            consistency: None,
        };
        match self.call(req).await {
            Response::Written { .. } => Reply::Simple("OK"),
            other => error_reply(other, true),
        }
    }

    /// Deletes the key if a read finds it; answers whether it did.
    async fn delete_existing(&self, key: &Bytes) -> Result<bool, Reply> {
        let context = match self.call(get(key)).await {
            Response::Value { context, .. } => context,
            Response::NotFound { .. } => return Ok(false),
            other => return Err(error_reply(other, false)),
        };
        let req = Request::Delete {
            key: key.clone(),
            context: Some(context),
            consistency: None,
        };
        match self.call(req).await {
            Response::Written { .. } => Ok(true),
            other => Err(error_reply(other, true)),
        }
    }
}

fn get(key: &Bytes) -> Request {
    Request::Get {
        key: key.clone(),
        consistency: None,
    }
}

/// A failed answer as a Redis error. `write` says whether the request was
/// a write, for which a timeout may still have applied it.
fn error_reply(response: Response, write: bool) -> Reply {
    let Response::Error(ErrorReply { code, message }) = response else {
        return Reply::err(format!("unexpected answer from the store: {response:?}"));
    };
    let maybe = if write {
        "; the write may have been applied"
    } else {
        ""
    };
    match code {
        ErrorCode::Unavailable => Reply::err(format!("unavailable: {message}")),
        ErrorCode::Timeout => Reply::err(format!("timeout: {message}{maybe}")),
        ErrorCode::Indeterminate => Reply::err(format!("indeterminate: {message}{maybe}")),
        ErrorCode::TooManySiblings => Reply::err(format!("too many siblings: {message}")),
        _ => Reply::err(message),
    }
}

/// Accepts RESP connections until `shutdown` turns true, then waits for the
/// commands in flight. Connections are bounded by their own semaphore of
/// `connections_max`, counted apart from the native port's.
pub async fn serve(
    listener: TcpListener,
    limits: Limits,
    service: Arc<dyn Service>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = Arc::new(limits);
    let connections = Arc::new(Semaphore::new(limits.connections_max));
    let tracker = TaskTracker::new();
    while let Some((mut stream, peer)) = accept(&listener, &mut shutdown).await {
        let permit = Arc::clone(&connections).try_acquire_owned().ok();
        let limits = Arc::clone(&limits);
        let service = Arc::clone(&service);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let Some(_permit) = permit else {
                let mut out = BytesMut::new();
                Reply::err("max number of clients reached").encode(&mut out);
                let _ = tokio::time::timeout(limits.write_timeout(), stream.write_all(&out)).await;
                return;
            };
            if let Err(e) = connection(stream, &limits, &*service, shutdown).await {
                tracing::debug!(%peer, error = %e, "RESP connection closed");
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// The command loop of one connection.
async fn connection(
    mut stream: TcpStream,
    limits: &Limits,
    service: &dyn Service,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let parse_limits = ParseLimits::from_limits(limits);
    let mut session = Session::default();
    let mut buf = BytesMut::new();
    let mut out = BytesMut::new();
    loop {
        match parse_command(&mut buf, parse_limits) {
            Ok(Some(args)) => {
                execute(args, service, limits, &mut session)
                    .await
                    .encode(&mut out);
                if session.quit {
                    return flush(&mut stream, &mut out, limits).await;
                }
                if out.len() >= WRITE_BATCH_BYTES_MAX {
                    flush(&mut stream, &mut out, limits).await?;
                }
            }
            Ok(None) => {
                // Everything buffered is answered: send it before waiting.
                flush(&mut stream, &mut out, limits).await?;
                let limit = if buf.is_empty() {
                    limits.idle_timeout()
                } else {
                    limits.read_timeout()
                };
                buf.reserve(READ_CHUNK_BYTES);
                let read = tokio::time::timeout(limit, stream.read_buf(&mut buf));
                tokio::select! {
                    r = read => match r {
                        Err(_) => return Ok(()),
                        Ok(Ok(0)) => return Ok(()),
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(e),
                    },
                    () = stopped(&mut shutdown) => return Ok(()),
                }
            }
            Err(e) => {
                // The answers before the bad command, then why, then close.
                Reply::err(e.to_string()).encode(&mut out);
                buf.advance(buf.len());
                flush(&mut stream, &mut out, limits).await?;
                linger(&mut stream, limits).await;
                return Ok(());
            }
        }
    }
}

/// Bound on the bytes read and dropped after a protocol error.
const LINGER_BYTES_MAX: usize = 1024 * 1024;

/// Closes our side, then reads and drops what the client still sends, up
/// to [`LINGER_BYTES_MAX`] or the read timeout: closing a socket with
/// unread bytes sends a reset, which can destroy the error answer before
/// the client reads it.
async fn linger(stream: &mut TcpStream, limits: &Limits) {
    let _ = stream.shutdown().await;
    let mut sink = vec![0u8; READ_CHUNK_BYTES];
    let mut dropped = 0;
    let drain = async {
        while dropped < LINGER_BYTES_MAX {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => dropped += n,
            }
        }
    };
    let _ = tokio::time::timeout(limits.read_timeout(), drain).await;
}

/// Writes what is gathered; a client that does not read within the write
/// timeout is closed.
async fn flush(stream: &mut TcpStream, out: &mut BytesMut, limits: &Limits) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(limits.write_timeout(), stream.write_all(out)).await {
        Ok(result) => {
            out.clear();
            result
        }
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client is not reading its answers",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use futures::future::BoxFuture;
    use kv_wire::peer::{PeerRequest, PeerResponse};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    const LIMITS: ParseLimits = ParseLimits {
        bulk_len_max: 16,
        command_len_max: 40,
    };

    fn parse(input: &[u8]) -> Result<Option<Vec<Bytes>>, ParseError> {
        parse_command(&mut BytesMut::from(input), LIMITS)
    }

    #[test]
    fn arrays_and_inline_commands_parse() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING hi\r\n"[..]);
        let first = parse_command(&mut buf, LIMITS).unwrap().unwrap();
        assert_eq!(first, vec![Bytes::from("GET"), Bytes::from("k")]);
        let second = parse_command(&mut buf, LIMITS).unwrap().unwrap();
        assert_eq!(second, vec![Bytes::from("PING"), Bytes::from("hi")]);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_partial_command_consumes_nothing() {
        let whole = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        for cut in 1..whole.len() {
            let mut buf = BytesMut::from(&whole[..cut]);
            assert_eq!(parse_command(&mut buf, LIMITS), Ok(None), "cut at {cut}");
            assert_eq!(buf.len(), cut);
        }
    }

    #[test]
    fn lengths_over_the_limits_are_refused_before_the_bytes_arrive() {
        assert!(matches!(
            parse(b"*1\r\n$17\r\n"),
            Err(ParseError::TooLarge {
                what: "bulk length",
                ..
            })
        ));
        assert!(matches!(
            parse(b"*3\r\n$16\r\n0123456789abcdef\r\n$16\r\n0123456789abcdef\r\n$16\r\n"),
            Err(ParseError::TooLarge {
                what: "command length",
                ..
            })
        ));
        assert!(matches!(
            parse(format!("*{}\r\n", ARGS_MAX + 1).as_bytes()),
            Err(ParseError::TooLarge {
                what: "argument count",
                ..
            })
        ));
        let long_inline = vec![b'a'; INLINE_LEN_MAX];
        assert!(matches!(
            parse(&long_inline),
            Err(ParseError::TooLarge { .. })
        ));
        assert!(matches!(
            parse(b"*1\r\n$0000000000000000000000000000000000001\r\n"),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_frames_are_refused() {
        for bad in [
            &b"*1\r\n+x\r\n"[..],
            b"*x\r\n",
            b"*1\r\n$-1\r\n",
            b"*1\r\n$1\r\nab\r\n",
            b"*1\n",
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn replies_encode_as_resp2() {
        let mut out = BytesMut::new();
        Reply::Array(vec![
            Reply::Simple("OK"),
            Reply::Error("ERR a\r\nb".to_owned()),
            Reply::Int(-3),
            Reply::bulk("v"),
            Reply::Nil,
        ])
        .encode(&mut out);
        assert_eq!(
            &out[..],
            b"*5\r\n+OK\r\n-ERR a  b\r\n:-3\r\n$1\r\nv\r\n$-1\r\n"
        );
    }

    /// A one-replica store with sibling semantics: a write with no context
    /// or a stale one adds a sibling, a write with the current context
    /// replaces them all.
    #[derive(Default)]
    struct FakeStore {
        keys: Mutex<BTreeMap<Bytes, (u64, Vec<Bytes>)>>,
    }

    impl Service for FakeStore {
        fn client(&self, req: Request) -> BoxFuture<'static, Response> {
            let mut keys = self.keys.lock().unwrap();
            let answer = match req {
                Request::Get { key, .. } => match keys.get(&key) {
                    Some((v, s)) if !s.is_empty() => Response::Value {
                        siblings: s.clone(),
                        context: Bytes::from(v.to_string()),
                        omitted: 0,
                    },
                    other => Response::NotFound {
                        context: Bytes::from(other.map_or(0, |(v, _)| *v).to_string()),
                    },
                },
                Request::Put {
                    key,
                    value,
                    context,
                    ..
                } => write(&mut keys, key, Some(value), context),
                Request::Delete { key, context, .. } => write(&mut keys, key, None, context),
                _ => Response::Error(ErrorReply {
                    code: ErrorCode::Unavailable,
                    message: "no quorum".to_owned(),
                }),
            };
            Box::pin(std::future::ready(answer))
        }

        fn peer(&self, _: PeerRequest) -> BoxFuture<'static, PeerResponse> {
            Box::pin(std::future::ready(PeerResponse::Error("none".to_owned())))
        }
    }

    fn write(
        keys: &mut BTreeMap<Bytes, (u64, Vec<Bytes>)>,
        key: Bytes,
        value: Option<Bytes>,
        context: Option<Bytes>,
    ) -> Response {
        let entry = keys.entry(key).or_default();
        let seen = context.and_then(|c| std::str::from_utf8(&c).ok()?.parse::<u64>().ok());
        if seen == Some(entry.0) {
            entry.1.clear();
        }
        entry.0 += 1;
        entry.1.extend(value);
        Response::Written {
            context: Bytes::from(entry.0.to_string()),
        }
    }

    async fn run(store: &FakeStore, session: &mut Session, words: &[&str]) -> Reply {
        let args = words.iter().map(|w| Bytes::from(w.to_string())).collect();
        execute(args, store, &Limits::default(), session).await
    }

    #[tokio::test]
    async fn commands_map_onto_the_store() {
        let store = FakeStore::default();
        let s = &mut Session::default();
        assert_eq!(
            run(&store, s, &["set", "a", "1"]).await,
            Reply::Simple("OK")
        );
        assert_eq!(
            run(&store, s, &["SET", "a", "2"]).await,
            Reply::Simple("OK")
        );
        // SET read first, so the second superseded the first.
        assert_eq!(run(&store, s, &["GET", "a"]).await, Reply::bulk("2"));
        assert_eq!(
            run(&store, s, &["MSET", "b", "x", "c", "y"]).await,
            Reply::Simple("OK")
        );
        assert_eq!(
            run(&store, s, &["MGET", "a", "b", "nope"]).await,
            Reply::Array(vec![Reply::bulk("2"), Reply::bulk("x"), Reply::Nil])
        );
        assert_eq!(
            run(&store, s, &["EXISTS", "a", "b", "nope"]).await,
            Reply::Int(2)
        );
        assert_eq!(
            run(&store, s, &["DEL", "a", "nope", "b"]).await,
            Reply::Int(2)
        );
        assert_eq!(run(&store, s, &["GET", "a"]).await, Reply::Nil);
        assert_eq!(run(&store, s, &["EXISTS", "a"]).await, Reply::Int(0));
    }

    #[tokio::test]
    async fn an_mget_answer_is_bounded() {
        let store = FakeStore::default();
        let s = &mut Session::default();
        let limits = Limits {
            frame_len_max: 10,
            ..Limits::default()
        };
        let args = ["SET", "k", "12345"].map(Bytes::from).to_vec();
        assert_eq!(execute(args, &store, &limits, s).await, Reply::Simple("OK"));
        let two = ["MGET", "k", "k"].map(Bytes::from).to_vec();
        assert!(matches!(
            execute(two, &store, &limits, s).await,
            Reply::Array(_)
        ));
        let three = ["MGET", "k", "k", "k"].map(Bytes::from).to_vec();
        let Reply::Error(e) = execute(three, &store, &limits, s).await else {
            panic!("an answer over the bound is an error");
        };
        assert!(e.contains("frame_len_max"), "{e}");
    }

    #[tokio::test]
    async fn siblings_show_through_kv_get_and_resolve_with_kv_set() {
        let store = FakeStore::default();
        let s = &mut Session::default();
        run(&store, s, &["KV.SET", "k", "one", ""]).await;
        run(&store, s, &["KV.SET", "k", "two", ""]).await;
        let before = SIBLING_GETS_TOTAL.load(Ordering::Relaxed);
        assert_eq!(run(&store, s, &["GET", "k"]).await, Reply::bulk("two"));
        assert!(SIBLING_GETS_TOTAL.load(Ordering::Relaxed) > before);
        let Reply::Array(items) = run(&store, s, &["KV.GET", "k"]).await else {
            panic!("KV.GET answers an array");
        };
        assert_eq!(items[1..], [Reply::bulk("one"), Reply::bulk("two")]);
        let Reply::Bulk(context) = &items[0] else {
            panic!("a context first")
        };
        let context = std::str::from_utf8(context).unwrap().to_owned();
        run(&store, s, &["KV.SET", "k", "both", &context]).await;
        assert_eq!(
            run(&store, s, &["KV.GET", "k"]).await,
            Reply::Array(vec![Reply::bulk("3"), Reply::bulk("both")])
        );
    }

    #[tokio::test]
    async fn the_rest_answers_as_redis_clients_expect() {
        let store = FakeStore::default();
        let s = &mut Session::default();
        assert_eq!(run(&store, s, &["PING"]).await, Reply::Simple("PONG"));
        assert_eq!(run(&store, s, &["ECHO", "hi"]).await, Reply::bulk("hi"));
        assert_eq!(run(&store, s, &["SELECT", "0"]).await, Reply::Simple("OK"));
        assert!(matches!(
            run(&store, s, &["SELECT", "1"]).await,
            Reply::Error(_)
        ));
        assert!(matches!(
            run(&store, s, &["HELLO", "2"]).await,
            Reply::Array(_)
        ));
        let Reply::Error(e) = run(&store, s, &["HELLO", "3"]).await else {
            panic!()
        };
        assert!(e.starts_with("NOPROTO"), "{e}");
        assert_eq!(
            run(&store, s, &["CLIENT", "SETNAME", "me"]).await,
            Reply::Simple("OK")
        );
        assert_eq!(
            run(&store, s, &["CLIENT", "GETNAME"]).await,
            Reply::bulk("me")
        );
        let Reply::Error(e) = run(&store, s, &["SET", "k", "v", "EX", "10"]).await else {
            panic!()
        };
        assert!(e.contains("'EX'") && e.contains("TTL"), "{e}");
        let Reply::Error(e) = run(&store, s, &["SET", "k", "v", "NX"]).await else {
            panic!()
        };
        assert!(e.contains("'NX'"), "{e}");
        let Reply::Error(e) = run(&store, s, &["FLUSHALL"]).await else {
            panic!()
        };
        assert_eq!(e, "ERR unknown command 'FLUSHALL'");
        let Reply::Error(e) = run(&store, s, &["DBSIZE"]).await else {
            panic!()
        };
        assert!(e.contains("honestly"), "{e}");
        let Reply::Error(e) = run(&store, s, &["GET"]).await else {
            panic!()
        };
        assert!(e.contains("wrong number of arguments"), "{e}");
        let long_key = "k".repeat(Limits::default().key_len_max + 1);
        let Reply::Error(e) = run(&store, s, &["GET", &long_key]).await else {
            panic!()
        };
        assert!(e.contains("exceeds"), "{e}");
        assert_eq!(run(&store, s, &["QUIT"]).await, Reply::Simple("OK"));
        assert!(s.quit);
    }

    #[test]
    fn store_errors_say_what_happened() {
        let err = |code| {
            Response::Error(ErrorReply {
                code,
                message: "m".to_owned(),
            })
        };
        assert_eq!(
            error_reply(err(ErrorCode::Unavailable), true),
            Reply::err("unavailable: m")
        );
        assert_eq!(
            error_reply(err(ErrorCode::Timeout), true),
            Reply::err("timeout: m; the write may have been applied")
        );
        assert_eq!(
            error_reply(err(ErrorCode::Timeout), false),
            Reply::err("timeout: m")
        );
    }
}
