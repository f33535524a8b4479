//! Response encodings: awsJson1.1 (KMS), awsQuery XML (STS, IAM) and ec2Query XML (EC2).

use bytes::Bytes;
use http_body_util::Full;

use crate::sigv4::AuthError;

pub type Resp = hyper::Response<Full<Bytes>>;

pub const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
pub const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
pub const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// The wire protocol a request was recognised as; decides how errors are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Kms,
    Sts,
    Iam,
    Ec2,
}

impl Protocol {
    pub fn service(self) -> &'static str {
        match self {
            Protocol::Kms => "kms",
            Protocol::Sts => "sts",
            Protocol::Iam => "iam",
            Protocol::Ec2 => "ec2",
        }
    }
}

fn build(status: u16, content_type: &str, request_id: &str, body: Vec<u8>) -> Resp {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    let h = r.headers_mut();
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    r
}

pub fn json(status: u16, request_id: &str, value: &serde_json::Value) -> Resp {
    build(status, "application/json", request_id, value.to_string().into_bytes())
}

pub fn kms_ok(request_id: &str, value: &serde_json::Value) -> Resp {
    build(200, "application/x-amz-json-1.1", request_id, value.to_string().into_bytes())
}

pub fn kms_error(request_id: &str, status: u16, type_name: &str, message: &str) -> Resp {
    let body = serde_json::json!({"__type": type_name, "message": message});
    let mut r = build(status, "application/x-amz-json-1.1", request_id, body.to_string().into_bytes());
    if let Ok(v) = http::HeaderValue::from_str(type_name) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

pub fn xml_ok(request_id: &str, body: String) -> Resp {
    build(200, "text/xml", request_id, body.into_bytes())
}

/// Escape text for XML element content.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `<name>escaped</name>`
pub fn leaf(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", esc(value))
}

/// A whole awsQuery response: `<{Action}Response xmlns><{Action}Result>..</..><ResponseMetadata>`.
pub fn query_response(ns: &str, action: &str, result: Option<&str>, request_id: &str) -> String {
    let mut s = format!("<{action}Response xmlns=\"{ns}\">");
    if let Some(r) = result {
        s.push_str(&format!("<{action}Result>{r}</{action}Result>"));
    }
    s.push_str(&format!(
        "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        esc(request_id)
    ));
    s
}

/// Errors of the query protocols (STS, IAM, EC2): an AWS error code, a status and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct QueryError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl QueryError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> QueryError {
        QueryError { status, code, message: message.into() }
    }
    pub fn validation(message: impl Into<String>) -> QueryError {
        QueryError::new(400, "ValidationError", message)
    }
    pub fn missing(param: &str) -> QueryError {
        QueryError::new(400, "MissingParameter", format!("The request must contain the parameter {param}"))
    }
    pub fn internal() -> QueryError {
        QueryError::new(500, "InternalFailure", "The request processing has failed because of an unknown error.")
    }
}

pub fn query_error(proto: Protocol, request_id: &str, e: &QueryError) -> Resp {
    let body = match proto {
        Protocol::Ec2 => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
            esc(e.code),
            esc(&e.message),
            esc(request_id)
        ),
        _ => {
            let ns = if proto == Protocol::Iam { IAM_NS } else { STS_NS };
            let kind = if e.status >= 500 { "Receiver" } else { "Sender" };
            format!(
                "<ErrorResponse xmlns=\"{ns}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                esc(e.code),
                esc(&e.message),
                esc(request_id)
            )
        }
    };
    build(e.status, "text/xml", request_id, body.into_bytes())
}

/// An authentication failure, in the caller's protocol.
pub fn auth_error(proto: Protocol, request_id: &str, e: &AuthError) -> Resp {
    let msg = e.to_string();
    if proto == Protocol::Kms {
        let name = match e {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::SignatureMismatch | AuthError::SignatureExpired(_) | AuthError::WrongScope(_) => {
                "InvalidSignatureException"
            }
            AuthError::ExpiredToken => "ExpiredTokenException",
        };
        return kms_error(request_id, 400, name, &msg);
    }
    let q = if proto == Protocol::Ec2 {
        match e {
            AuthError::Incomplete(_) => QueryError::new(400, "IncompleteSignature", msg),
            AuthError::SignatureExpired(_) => QueryError::new(400, "RequestExpired", msg),
            AuthError::ExpiredToken => QueryError::new(400, "RequestExpired", msg),
            AuthError::Missing => QueryError::new(401, "MissingAuthenticationToken", msg),
            _ => QueryError::new(401, "AuthFailure", msg),
        }
    } else {
        match e {
            AuthError::Missing => QueryError::new(403, "MissingAuthenticationToken", msg),
            AuthError::Incomplete(_) => QueryError::new(400, "IncompleteSignature", msg),
            AuthError::UnrecognizedClient => QueryError::new(403, "InvalidClientTokenId", msg),
            AuthError::SignatureMismatch | AuthError::SignatureExpired(_) | AuthError::WrongScope(_) => {
                QueryError::new(403, "SignatureDoesNotMatch", msg)
            }
            AuthError::ExpiredToken => QueryError::new(403, "ExpiredToken", msg),
        }
    };
    query_error(proto, request_id, &q)
}

/// Render a timestamp (unix seconds) as ISO 8601 with milliseconds, e.g. `2026-01-01T00:00:00.000Z`.
pub fn iso8601(unix: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos((unix * 1e9) as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&fmt).unwrap_or_default()
}

/// ISO 8601 without fractional seconds (STS `Expiration`).
pub fn iso8601_secs(unix: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_dates() {
        assert_eq!(esc("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
        assert_eq!(iso8601(0.5), "1970-01-01T00:00:00.500Z");
        assert_eq!(iso8601_secs(86400.0), "1970-01-02T00:00:00Z");
    }
}
