//! Reading an answer: status line and headers (httparse), then a body by
//! `Content-Length`, chunks, or until the connection closes, keeping at most
//! [`BODY_KEEP`] bytes of it.

use super::*;

pub(super) enum ReadError {
    /// The connection ended before any byte of an answer.
    Stale(HttpError),
    Failed(HttpError),
}

use ReadError::{Failed, Stale};

pub(super) async fn read_response(
    conn: &mut Conn,
    head_only: bool,
) -> Result<(Response, bool), ReadError> {
    // Status line and headers; 1xx answers are skipped.
    let (status, framing, mut keep) = loop {
        let parsed = {
            let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
            let mut r = httparse::Response::new(&mut headers);
            match r.parse(conn.avail()) {
                Ok(httparse::Status::Complete(n)) => Some(head_of(&r, n, head_only)),
                Ok(httparse::Status::Partial) => None,
                Err(e) => {
                    return Err(Failed(HttpError::Malformed(format!(
                        "{e} in {:?}",
                        shown(conn.avail())
                    ))))
                }
            }
        };
        match parsed {
            Some(Ok((n, status, framing, keep))) => {
                conn.start += n;
                if (100..200).contains(&status) {
                    continue;
                }
                break (status, framing, keep);
            }
            Some(Err(m)) => return Err(Failed(HttpError::Malformed(m))),
            None => {
                if conn.avail().len() > HEAD_MAX {
                    return Err(Failed(HttpError::Malformed(format!(
                        "headers longer than {HEAD_MAX} bytes"
                    ))));
                }
                let nothing_yet = conn.avail().is_empty();
                match conn.fill().await {
                    Ok(0) if nothing_yet => {
                        return Err(Stale(HttpError::Io(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the engine closed the connection without answering",
                        ))))
                    }
                    Ok(0) => {
                        return Err(Failed(HttpError::Malformed(format!(
                            "the answer ends inside its headers: {:?}",
                            shown(conn.avail())
                        ))))
                    }
                    Ok(_) => {}
                    Err(e) if nothing_yet => return Err(Stale(HttpError::Io(e))),
                    Err(e) => return Err(Failed(HttpError::Io(e))),
                }
            }
        }
    };
    let mut body = Body {
        data: Vec::new(),
        truncated: false,
    };
    match framing {
        Framing::None => {}
        Framing::Length(n) => conn.body_bytes(n, &mut body).await.map_err(Failed)?,
        Framing::Chunked => chunked(conn, &mut body).await.map_err(Failed)?,
        Framing::UntilClose => {
            keep = false;
            loop {
                let a = conn.avail().len();
                body.keep(&conn.buf[conn.start..]);
                conn.start += a;
                if body.truncated {
                    break;
                }
                match conn.fill().await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err(Failed(HttpError::Io(e))),
                }
            }
        }
    }
    if body.truncated {
        keep = false;
    }
    Ok((
        Response {
            status,
            body: body.data,
            truncated: body.truncated,
        },
        keep,
    ))
}

type Head = (usize, u16, Framing, bool);

fn head_of(r: &httparse::Response, n: usize, head_only: bool) -> Result<Head, String> {
    let status = r.code.ok_or("no status code")?;
    let mut keep = r.version == Some(1);
    let mut length = None;
    let mut chunked = false;
    for h in r.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| format!("Content-Length {:?} is not a number", shown(h.value)))?;
            if length.is_some_and(|l| l != v) {
                return Err("two different Content-Length headers".into());
            }
            length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .split(|&b| b == b',')
                .next_back()
                .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            if !chunked {
                return Err(format!("transfer-encoding {:?}", shown(h.value)));
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            keep = crate::http::server::connection_keeps(h.value, keep);
        }
    }
    let framing = if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(l) = length {
        Framing::Length(l)
    } else {
        Framing::UntilClose
    };
    Ok((n, status, framing, keep))
}

async fn chunked(conn: &mut Conn, body: &mut Body) -> Result<(), HttpError> {
    loop {
        let size = loop {
            match httparse::parse_chunk_size(conn.avail()) {
                Ok(httparse::Status::Complete((used, size))) => {
                    conn.start += used;
                    break size;
                }
                Ok(httparse::Status::Partial) => {
                    if conn.avail().len() > HEAD_MAX {
                        return Err(HttpError::Malformed("a chunk size line too long".into()));
                    }
                    conn.fill_or_eof("mid-body").await?;
                }
                Err(_) => {
                    return Err(HttpError::Malformed(format!(
                        "bad chunk size {:?}",
                        shown(conn.avail())
                    )))
                }
            }
        };
        if size == 0 {
            // Trailers, up to the empty line.
            while conn.line().await? > 1 {}
            return Ok(());
        }
        conn.body_bytes(size, body).await?;
        if body.truncated {
            return Ok(());
        }
        if conn.line().await? > 1 {
            return Err(HttpError::Malformed("a chunk longer than its size".into()));
        }
    }
}

/// The first bytes of `b`, for a message.
fn shown(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(80)]).into_owned()
}
