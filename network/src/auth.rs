//! Proving knowledge of the cluster secret on connect, before anything else
//! is read: an HMAC-SHA256 challenge–response in both directions.
//!
//! Runs on whatever thread opens or accepts the connection (the worker's and
//! the coordinator's control threads, the data-plane connector), with
//! blocking sockets whose timeouts the caller sets; the connection then goes
//! to its user — for a data link, the shard's core.
//!
//! The exchange, after which both sides know the other holds the secret:
//! 1. client → server: `MAGIC`, a fresh client nonce, the length of the
//!    context and the context (what the connection is for: the caller's
//!    bytes, at most `max_context`, for example a job, an attempt and two
//!    shards);
//! 2. server → client: a fresh server nonce and
//!    `HMAC(secret, "server" | client nonce | server nonce | context)`;
//! 3. client → server, if that proof holds:
//!    `HMAC(secret, "client" | server nonce | client nonce | context)`;
//! 4. server → client: one byte, `ACCEPTED`, if that proof holds; else the
//!    server closes the connection.
//!
//! Each side's proof covers the other's fresh nonce (no replay) and its role
//! (a proof cannot be reflected back), and both cover the context (a proof
//! for one link is no proof for another). Proofs are compared in constant
//! time. The secret itself never travels and never appears in an error,
//! a log line or a `Debug` output ([`ClusterSecret`] prints redacted).

use std::fmt;
use std::io::{self, Read, Write};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// What opens every handshake (and tells a stray client it is talking to
/// something else).
pub const MAGIC: [u8; 8] = *b"SLUICE\x00\x01";
/// Bytes of a nonce.
const NONCE: usize = 32;
/// Bytes of a proof (HMAC-SHA256).
const PROOF: usize = 32;
/// The byte that accepts a client.
const ACCEPTED: u8 = 1;
/// The shortest secret accepted.
pub const SECRET_MIN_BYTES: usize = 16;

/// The cluster secret: every process of a cluster holds it; nothing shows
/// it.
#[derive(Clone)]
pub struct ClusterSecret(Vec<u8>);

impl ClusterSecret {
    /// A secret from its text (surrounding whitespace, such as a file's
    /// final newline, is not part of it).
    pub fn new(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() < SECRET_MIN_BYTES {
            return Err(format!(
                "the cluster secret is too short: it needs at least {SECRET_MIN_BYTES} bytes"
            ));
        }
        Ok(ClusterSecret(text.as_bytes().to_vec()))
    }

    fn mac(&self, role: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(role);
        for part in parts {
            mac.update(&(part.len() as u32).to_le_bytes());
            mac.update(part);
        }
        mac
    }

    fn proof(&self, role: &[u8], parts: &[&[u8]]) -> [u8; PROOF] {
        self.mac(role, parts).finalize().into_bytes().into()
    }

    fn verify(&self, role: &[u8], parts: &[&[u8]], proof: &[u8]) -> bool {
        self.mac(role, parts).verify_slice(proof).is_ok()
    }

    /// A token derived from the secret for HTTP requests (`Authorization:
    /// Bearer <token>`): it proves knowledge of the secret without being it.
    pub fn http_token(&self) -> String {
        self.proof(b"http bearer token", &[])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `token` is this secret's HTTP token (in constant time).
    pub fn accepts_http_token(&self, token: &str) -> bool {
        let expected = self.http_token();
        let (a, b) = (expected.as_bytes(), token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

/// Why a handshake failed. Never names the secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the peer is not a Sluice process (bad handshake magic)")]
    Magic,
    #[error("the peer does not know the cluster secret")]
    WrongSecret,
    #[error("the handshake context is {0} bytes, more than the {1} allowed")]
    ContextTooLong(usize, usize),
    #[error("the handshake failed: {0}")]
    Io(#[from] io::Error),
}

fn nonce() -> io::Result<[u8; NONCE]> {
    let mut nonce = [0; NONCE];
    getrandom::fill(&mut nonce).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(nonce)
}

/// The connecting side: proves the secret for `context` and checks that the
/// server knows it too.
pub fn client_handshake<S: Read + Write>(
    stream: &mut S,
    secret: &ClusterSecret,
    context: &[u8],
) -> Result<(), AuthError> {
    if context.len() > u16::MAX as usize {
        return Err(AuthError::ContextTooLong(context.len(), u16::MAX as usize));
    }
    let client_nonce = nonce()?;
    let mut hello = Vec::with_capacity(MAGIC.len() + NONCE + 2 + context.len());
    hello.extend_from_slice(&MAGIC);
    hello.extend_from_slice(&client_nonce);
    hello.extend_from_slice(&(context.len() as u16).to_le_bytes());
    hello.extend_from_slice(context);
    stream.write_all(&hello)?;
    stream.flush()?;
    let mut reply = [0; NONCE + PROOF];
    stream.read_exact(&mut reply)?;
    let (server_nonce, server_proof) = reply.split_at(NONCE);
    if !secret.verify(
        b"server",
        &[&client_nonce, server_nonce, context],
        server_proof,
    ) {
        return Err(AuthError::WrongSecret);
    }
    let proof = secret.proof(b"client", &[server_nonce, &client_nonce, context]);
    stream.write_all(&proof)?;
    stream.flush()?;
    let mut verdict = [0; 1];
    match stream.read_exact(&mut verdict) {
        Ok(()) if verdict[0] == ACCEPTED => Ok(()),
        Ok(()) => Err(AuthError::WrongSecret),
        // The server closes the connection on a wrong proof.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(AuthError::WrongSecret),
        Err(e) => Err(e.into()),
    }
}

/// The accepting side: checks that the client knows the secret (reading at
/// most `max_context` bytes of context before that) and proves it knows it
/// too; returns the context.
pub fn server_handshake<S: Read + Write>(
    stream: &mut S,
    secret: &ClusterSecret,
    max_context: usize,
) -> Result<Vec<u8>, AuthError> {
    let mut head = [0; MAGIC.len() + NONCE + 2];
    stream.read_exact(&mut head)?;
    if head[..MAGIC.len()] != MAGIC {
        return Err(AuthError::Magic);
    }
    let client_nonce = &head[MAGIC.len()..MAGIC.len() + NONCE];
    let length = u16::from_le_bytes([head[MAGIC.len() + NONCE], head[MAGIC.len() + NONCE + 1]]);
    if length as usize > max_context {
        return Err(AuthError::ContextTooLong(length as usize, max_context));
    }
    let mut context = vec![0; length as usize];
    stream.read_exact(&mut context)?;
    let server_nonce = nonce()?;
    let mut reply = Vec::with_capacity(NONCE + PROOF);
    reply.extend_from_slice(&server_nonce);
    reply.extend_from_slice(&secret.proof(b"server", &[client_nonce, &server_nonce, &context]));
    stream.write_all(&reply)?;
    stream.flush()?;
    let mut client_proof = [0; PROOF];
    stream.read_exact(&mut client_proof)?;
    if !secret.verify(
        b"client",
        &[&server_nonce, client_nonce, &context],
        &client_proof,
    ) {
        return Err(AuthError::WrongSecret);
    }
    stream.write_all(&[ACCEPTED])?;
    stream.flush()?;
    Ok(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::thread;
    use std::time::Duration;

    fn secret(text: &str) -> ClusterSecret {
        ClusterSecret::new(text).unwrap()
    }

    /// Runs a handshake over a real loopback connection.
    fn handshake(
        client_secret: &str,
        server_secret: &str,
        context: &[u8],
    ) -> (Result<(), AuthError>, Result<Vec<u8>, AuthError>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server_secret = secret(server_secret);
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            server_handshake(&mut stream, &server_secret, 64)
        });
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let client = client_handshake(&mut stream, &secret(client_secret), context);
        drop(stream);
        (client, server.join().unwrap())
    }

    #[test]
    fn the_same_secret_is_accepted_and_the_context_arrives() {
        let (client, server) = handshake("0123456789abcdef", "0123456789abcdef", b"job 7");
        client.unwrap();
        assert_eq!(server.unwrap(), b"job 7");
    }

    #[test]
    fn a_wrong_secret_is_refused_on_both_sides() {
        let (client, server) = handshake("0123456789abcdef", "0123456789abcdeX", b"job 7");
        assert!(matches!(client, Err(AuthError::WrongSecret)), "{client:?}");
        // The client stops at the server's proof: the server reads no proof.
        assert!(server.is_err(), "{server:?}");
    }

    #[test]
    fn a_client_that_cannot_prove_is_refused_by_the_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            server_handshake(&mut stream, &secret("0123456789abcdef"), 64)
        });
        let mut stream = TcpStream::connect(address).unwrap();
        let mut hello = MAGIC.to_vec();
        hello.extend_from_slice(&[7; NONCE]);
        hello.extend_from_slice(&0u16.to_le_bytes());
        stream.write_all(&hello).unwrap();
        let mut reply = [0; NONCE + PROOF];
        stream.read_exact(&mut reply).unwrap();
        // A guess instead of a proof.
        stream.write_all(&[0; PROOF]).unwrap();
        assert!(matches!(
            server.join().unwrap(),
            Err(AuthError::WrongSecret)
        ));
        let mut verdict = [0; 1];
        assert_eq!(
            stream.read(&mut verdict).unwrap(),
            0,
            "closed, not accepted"
        );
    }

    #[test]
    fn garbage_and_long_contexts_are_refused_before_anything_is_read() {
        for bytes in [
            b"GET / HTTP/1.1\r\n\r\n_______________________________________".to_vec(),
            {
                let mut hello = MAGIC.to_vec();
                hello.extend_from_slice(&[0; NONCE]);
                hello.extend_from_slice(&u16::MAX.to_le_bytes());
                hello
            },
        ] {
            let mut stream = io::Cursor::new(bytes).chain(io::repeat(0));
            let mut duplex = Duplex {
                input: &mut stream,
                output: Vec::new(),
            };
            let result = server_handshake(&mut duplex, &secret("0123456789abcdef"), 64);
            assert!(
                matches!(
                    result,
                    Err(AuthError::Magic | AuthError::ContextTooLong(..))
                ),
                "{result:?}"
            );
            assert!(duplex.output.is_empty(), "nothing is answered");
        }
    }

    #[test]
    fn nothing_shows_the_secret() {
        let s = secret("  a-secret-nobody-may-see\n");
        assert!(!format!("{s:?}").contains("nobody"));
        assert!(!s.http_token().contains("nobody"));
        assert!(s.accepts_http_token(&s.http_token()));
        assert!(!s.accepts_http_token("a-secret-nobody-may-see"));
        assert!(!secret("another-secret-entirely").accepts_http_token(&s.http_token()));
        assert!(ClusterSecret::new("short").is_err());
    }

    struct Duplex<'a, R> {
        input: &'a mut R,
        output: Vec<u8>,
    }
    impl<R: Read> Read for Duplex<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }
    impl<R> Write for Duplex<'_, R> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
