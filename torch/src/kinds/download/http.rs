//! One attempt at an http:// or https:// source: a GET that follows redirects
//! itself, so that it can count them and reject any that leave http(s).

use std::time::Duration;

use ureq::http::{header, Response, StatusCode};
use ureq::{Agent, Body};

use super::verify::{CopyError, Digests, Hashers, Partial};
use super::AttemptError;

/// The maximum number of redirects followed from one source URL.
pub const MAX_REDIRECTS: usize = 5;

pub struct Client {
    agent: Agent,
}

impl Client {
    /// Builds a client that applies `timeout` to connecting, to waiting for
    /// the response headers and to each read of the body, so a large download
    /// has no total time limit but a stalled one fails.
    pub fn new(timeout: Duration) -> Client {
        let config = Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            // Only the raw bytes match the checksum, so ask for no encoding.
            .accept_encoding("identity")
            .user_agent(concat!("xp-torch/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .build();
        Client {
            agent: Agent::new_with_config(config),
        }
    }

    /// Fetches `url` into `partial`, following up to [`MAX_REDIRECTS`]
    /// redirects, and returns the byte count and digests of the body.
    pub fn fetch(
        &self,
        url: &str,
        partial: &mut Partial,
        max_bytes: u64,
        hashers: Hashers,
    ) -> Result<(u64, Digests), AttemptError> {
        let mut current = url.to_string();
        let mut redirects = 0;
        loop {
            let response = self.agent.get(&current).call().map_err(classify)?;
            let status = response.status();
            if status.is_redirection() {
                if redirects == MAX_REDIRECTS {
                    return Err(AttemptError::fatal(format!(
                        "more than {MAX_REDIRECTS} redirects, the last to `{current}`"
                    )));
                }
                current = redirect_target(&current, &response)?;
                redirects += 1;
                continue;
            }
            if status.is_server_error() {
                return Err(AttemptError::retry(format!("HTTP {}", describe(status))));
            }
            if !status.is_success() {
                return Err(AttemptError::fatal(format!("HTTP {}", describe(status))));
            }
            return receive_body(response, partial, max_bytes, hashers);
        }
    }
}

fn describe(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_string()
}

/// Streams a successful response's body into `partial`. A body shorter than
/// its `Content-Length` is an error that may be retried.
fn receive_body(
    response: Response<Body>,
    partial: &mut Partial,
    max_bytes: u64,
    hashers: Hashers,
) -> Result<(u64, Digests), AttemptError> {
    let length = response.body().content_length();
    if let Some(length) = length.filter(|length| *length > max_bytes) {
        return Err(AttemptError::fatal(format!(
            "the response is {length} bytes, more than `max_bytes` ({max_bytes})"
        )));
    }
    let mut reader = response.into_body().into_reader();
    let (received, digests) = match partial.receive(&mut reader, max_bytes, hashers) {
        Ok(done) => done,
        Err(CopyError::Read { received, source }) => {
            let expected = length.map_or(String::new(), |length| format!(" of {length}"));
            return Err(AttemptError::retry(format!(
                "the connection failed after {received}{expected} bytes: {source}"
            )));
        }
        Err(err) => return Err(AttemptError::fatal(err.to_string())),
    };
    if let Some(length) = length.filter(|length| *length != received) {
        return Err(AttemptError::retry(format!(
            "the body is truncated: received {received} of {length} bytes"
        )));
    }
    Ok((received, digests))
}

/// Returns the absolute URL a redirect points to. Only http and https
/// targets are accepted.
fn redirect_target(current: &str, response: &Response<Body>) -> Result<String, AttemptError> {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            AttemptError::fatal(format!("redirect {status} without a valid Location"))
        })?;
    let target = resolve(current, location);
    let scheme = target
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Err(AttemptError::fatal(format!(
            "redirect to `{target}` rejected: only http and https redirects are followed"
        )));
    }
    Ok(target)
}

/// Resolves a `Location` value against the URL that returned it.
fn resolve(base: &str, location: &str) -> String {
    let has_scheme = location
        .split_once(':')
        .is_some_and(|(scheme, _)| !scheme.is_empty() && scheme.chars().all(is_scheme_char));
    if has_scheme {
        return location.to_string();
    }
    // A base URL here always has a scheme, because sources are checked and
    // redirects are resolved to absolute URLs before they are followed.
    let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
    if let Some(network_path) = location.strip_prefix("//") {
        return format!("{scheme}://{network_path}");
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..authority_end]);
    if location.starts_with('/') {
        return format!("{origin}{location}");
    }
    let path = &rest[authority_end..];
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    let folder = &path[..path.rfind('/').map_or(0, |slash| slash + 1)];
    let folder = if folder.is_empty() { "/" } else { folder };
    format!("{origin}{folder}{location}")
}

fn is_scheme_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
}

/// Sorts a ureq error into one worth retrying (timeouts and failed
/// connections) or not (invalid URLs, protocol violations).
fn classify(err: ureq::Error) -> AttemptError {
    let retry = matches!(
        err,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
    );
    let message = match &err {
        ureq::Error::Timeout(which) => format!("timed out ({which})"),
        _ => err.to_string(),
    };
    AttemptError { message, retry }
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn resolve_location_forms() {
        let base = "http://127.0.0.1:8/a/b/file.csv?x=1";
        assert_eq!(resolve(base, "https://other/x"), "https://other/x");
        assert_eq!(resolve(base, "file:///etc/passwd"), "file:///etc/passwd");
        assert_eq!(resolve(base, "//host/y"), "http://host/y");
        assert_eq!(resolve(base, "/root.csv"), "http://127.0.0.1:8/root.csv");
        assert_eq!(resolve(base, "next.csv"), "http://127.0.0.1:8/a/b/next.csv");
        assert_eq!(resolve("http://host", "next.csv"), "http://host/next.csv");
    }
}
