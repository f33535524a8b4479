//! Clients of the emulator (or of real AWS): official SDK clients for KMS, STS and IAM over plain
//! HTTP, and a small SigV4-signed (aws-sigv4) ec2Query client for the VPC-endpoint subset.

use std::path::Path;
use std::time::SystemTime;

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};

/// Credentials read from a shared-credentials profile or the environment.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

impl StaticCredentials {
    pub fn new(access_key_id: &str, secret_access_key: &str) -> StaticCredentials {
        StaticCredentials {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: None,
        }
    }

    fn sdk(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.clone(),
            self.session_token.clone(),
            None,
            "atrest",
        )
    }
}

impl From<&crate::AccountCredentials> for StaticCredentials {
    fn from(a: &crate::AccountCredentials) -> Self {
        StaticCredentials::new(&a.access_key_id, &a.secret_access_key)
    }
}

/// Read one profile of an AWS CLI shared-credentials file.
pub fn read_profile(path: &Path, profile: &str) -> anyhow::Result<StaticCredentials> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut current = String::new();
    let (mut ak, mut sk, mut tok) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
            continue;
        }
        if current != profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => ak = Some(v),
                "aws_secret_access_key" => sk = Some(v),
                "aws_session_token" => tok = Some(v),
                _ => {}
            }
        }
    }
    match (ak, sk) {
        (Some(a), Some(s)) => Ok(StaticCredentials { access_key_id: a, secret_access_key: s, session_token: tok }),
        _ => anyhow::bail!("profile [{profile}] not found in {}", path.display()),
    }
}

fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_http()
}

pub fn kms_client(endpoint: &str, region: &str, creds: &StaticCredentials) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(creds.sdk())
        .http_client(http_client())
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

pub fn sts_client(endpoint: &str, region: &str, creds: &StaticCredentials) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(creds.sdk())
        .http_client(http_client())
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// IAM is global: always signed for us-east-1.
pub fn iam_client(endpoint: &str, creds: &StaticCredentials) -> aws_sdk_iam::Client {
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds.sdk())
        .http_client(http_client())
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

// ---------------------------------------------------------------------------------------------
// A minimal XML reader (for ec2Query responses); never panics on any input.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmlNode {
    pub name: String,
    pub text: String,
    pub children: Vec<XmlNode>,
}

impl XmlNode {
    pub fn child(&self, name: &str) -> Option<&XmlNode> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn text_of(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.clone())
    }

    /// `<set><item>..</item>...</set>` → the items.
    pub fn items(&self, set: &str) -> Vec<&XmlNode> {
        self.child(set).map(|s| s.children.iter().filter(|c| c.name == "item").collect()).unwrap_or_default()
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

pub fn parse_xml(input: &str) -> Option<XmlNode> {
    let mut stack = vec![XmlNode::default()];
    let mut rest = input;
    while let Some(lt) = rest.find('<') {
        let text = rest.get(..lt)?;
        if !text.trim().is_empty() {
            stack.last_mut()?.text.push_str(&unescape(text));
        }
        rest = rest.get(lt..)?;
        let gt = rest.find('>')?;
        let tag = rest.get(1..gt)?;
        rest = rest.get(gt + 1..)?;
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let node = stack.pop()?;
            if node.name != name.trim() || stack.is_empty() {
                return None;
            }
            stack.last_mut()?.children.push(node);
        } else {
            let self_closing = tag.ends_with('/');
            let name = tag.trim_end_matches('/').split_whitespace().next()?.to_string();
            let node = XmlNode { name, ..Default::default() };
            if self_closing {
                stack.last_mut()?.children.push(node);
            } else {
                stack.push(node);
            }
        }
        if stack.len() > 64 {
            return None;
        }
    }
    if stack.len() != 1 {
        return None;
    }
    stack.pop()?.children.into_iter().next()
}

// ---------------------------------------------------------------------------------------------
// EC2 client
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ec2Error {
    #[error("{code}: {message} (HTTP {status})")]
    Api { status: u16, code: String, message: String },
    #[error("transport error: {0}")]
    Transport(String),
}

impl Ec2Error {
    pub fn code(&self) -> &str {
        match self {
            Ec2Error::Api { code, .. } => code,
            Ec2Error::Transport(_) => "Transport",
        }
    }
}

/// A VPC endpoint as DescribeVpcEndpoints shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ec2Endpoint {
    pub vpc_endpoint_id: String,
    pub state: String,
    pub vpc_id: String,
    pub service_name: String,
    pub owner_id: String,
    pub creation_timestamp: String,
    pub dns_names: Vec<String>,
    /// Emulator only: the endpoint listener's URL (tag `atrest:endpoint-url`).
    pub url: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl Ec2Endpoint {
    fn from_xml(n: &XmlNode) -> Ec2Endpoint {
        let tags: Vec<(String, String)> = n
            .items("tagSet")
            .iter()
            .map(|t| (t.text_of("key").unwrap_or_default(), t.text_of("value").unwrap_or_default()))
            .collect();
        Ec2Endpoint {
            vpc_endpoint_id: n.text_of("vpcEndpointId").unwrap_or_default(),
            state: n.text_of("state").unwrap_or_default(),
            vpc_id: n.text_of("vpcId").unwrap_or_default(),
            service_name: n.text_of("serviceName").unwrap_or_default(),
            owner_id: n.text_of("ownerId").unwrap_or_default(),
            creation_timestamp: n.text_of("creationTimestamp").unwrap_or_default(),
            dns_names: n.items("dnsEntrySet").iter().filter_map(|d| d.text_of("dnsName")).collect(),
            url: tags.iter().find(|(k, _)| k == crate::ec2::URL_TAG).map(|(_, v)| v.clone()),
            tags,
        }
    }
}

/// A connection as the service side (DescribeVpcEndpointConnections) sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ec2Connection {
    pub service_id: String,
    pub vpc_endpoint_id: String,
    pub vpc_endpoint_owner: String,
    pub vpc_endpoint_state: String,
}

/// SigV4-signed ec2Query client (Version 2016-11-15).
#[derive(Clone)]
pub struct Ec2Client {
    endpoint: String,
    region: String,
    creds: StaticCredentials,
    http: reqwest::Client,
}

impl Ec2Client {
    pub fn new(endpoint: &str, region: &str, creds: StaticCredentials) -> Ec2Client {
        Ec2Client {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: region.to_string(),
            creds,
            http: reqwest::Client::new(),
        }
    }

    /// Call one action; returns the parsed response document.
    pub async fn call(&self, action: &str, params: &[(String, String)]) -> Result<XmlNode, Ec2Error> {
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action);
            form.append_pair("Version", "2016-11-15");
            for (k, v) in params {
                form.append_pair(k, v);
            }
            form.finish()
        };
        let url = format!("{}/", self.endpoint);
        let identity = self.creds.sdk().into();
        let signing_params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Ec2Error::Transport(e.to_string()))?
            .into();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let signable = SignableRequest::new(
            "POST",
            &url,
            [("content-type", content_type)].into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| Ec2Error::Transport(e.to_string()))?;
        let (instructions, _) =
            sign(signable, &signing_params).map_err(|e| Ec2Error::Transport(e.to_string()))?.into_parts();
        let mut req = http::Request::builder()
            .method("POST")
            .uri(&url)
            .header("content-type", content_type)
            .body(body)
            .map_err(|e| Ec2Error::Transport(e.to_string()))?;
        instructions.apply_to_request_http1x(&mut req);
        let req = reqwest::Request::try_from(req).map_err(|e| Ec2Error::Transport(e.to_string()))?;
        let resp = self.http.execute(req).await.map_err(|e| Ec2Error::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| Ec2Error::Transport(e.to_string()))?;
        let doc =
            parse_xml(&text).ok_or_else(|| Ec2Error::Transport(format!("unparseable response (HTTP {status})")))?;
        if status >= 300 {
            let err = doc.child("Errors").and_then(|e| e.child("Error")).cloned().unwrap_or_default();
            return Err(Ec2Error::Api {
                status,
                code: err.text_of("Code").unwrap_or_else(|| "Unknown".into()),
                message: err.text_of("Message").unwrap_or_default(),
            });
        }
        Ok(doc)
    }

    pub async fn create_vpc_endpoint(&self, vpc_id: &str, client_token: Option<&str>) -> Result<Ec2Endpoint, Ec2Error> {
        let mut p = vec![
            ("VpcId".to_string(), vpc_id.to_string()),
            ("ServiceName".to_string(), format!("com.amazonaws.{}.kms", self.region)),
            ("VpcEndpointType".to_string(), "Interface".to_string()),
        ];
        if let Some(t) = client_token {
            p.push(("ClientToken".to_string(), t.to_string()));
        }
        let doc = self.call("CreateVpcEndpoint", &p).await?;
        Ok(Ec2Endpoint::from_xml(doc.child("vpcEndpoint").unwrap_or(&XmlNode::default())))
    }

    pub async fn describe_vpc_endpoints(&self, ids: &[String]) -> Result<Vec<Ec2Endpoint>, Ec2Error> {
        let p: Vec<(String, String)> =
            ids.iter().enumerate().map(|(i, id)| (format!("VpcEndpointId.{}", i + 1), id.clone())).collect();
        let doc = self.call("DescribeVpcEndpoints", &p).await?;
        Ok(doc.items("vpcEndpointSet").into_iter().map(Ec2Endpoint::from_xml).collect())
    }

    /// Returns the ids that could not be processed, with their error codes.
    pub async fn delete_vpc_endpoints(&self, ids: &[String]) -> Result<Vec<(String, String)>, Ec2Error> {
        let p = indexed("VpcEndpointId", ids);
        let doc = self.call("DeleteVpcEndpoints", &p).await?;
        Ok(unsuccessful(&doc))
    }

    pub async fn accept_vpc_endpoint_connections(
        &self,
        service_id: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, Ec2Error> {
        let mut p = indexed("VpcEndpointId", ids);
        p.push(("ServiceId".into(), service_id.into()));
        let doc = self.call("AcceptVpcEndpointConnections", &p).await?;
        Ok(unsuccessful(&doc))
    }

    pub async fn reject_vpc_endpoint_connections(
        &self,
        service_id: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, Ec2Error> {
        let mut p = indexed("VpcEndpointId", ids);
        p.push(("ServiceId".into(), service_id.into()));
        let doc = self.call("RejectVpcEndpointConnections", &p).await?;
        Ok(unsuccessful(&doc))
    }

    pub async fn describe_vpc_endpoint_connections(&self) -> Result<Vec<Ec2Connection>, Ec2Error> {
        let doc = self.call("DescribeVpcEndpointConnections", &[]).await?;
        Ok(doc
            .items("vpcEndpointConnectionSet")
            .into_iter()
            .map(|n| Ec2Connection {
                service_id: n.text_of("serviceId").unwrap_or_default(),
                vpc_endpoint_id: n.text_of("vpcEndpointId").unwrap_or_default(),
                vpc_endpoint_owner: n.text_of("vpcEndpointOwner").unwrap_or_default(),
                vpc_endpoint_state: n.text_of("vpcEndpointState").unwrap_or_default(),
            })
            .collect())
    }
}

fn indexed(prefix: &str, ids: &[String]) -> Vec<(String, String)> {
    ids.iter().enumerate().map(|(i, id)| (format!("{prefix}.{}", i + 1), id.clone())).collect()
}

fn unsuccessful(doc: &XmlNode) -> Vec<(String, String)> {
    doc.items("unsuccessful")
        .iter()
        .map(|i| {
            (
                i.text_of("resourceId").unwrap_or_default(),
                i.child("error").and_then(|e| e.text_of("code")).unwrap_or_default(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_reader() {
        let doc = parse_xml("<?xml version=\"1.0\"?>\n<A xmlns=\"x\"><b>1 &amp; 2</b><set><item><c>x</c><set><item>n</item></set></item><item/></set></A>").unwrap();
        assert_eq!(doc.name, "A");
        assert_eq!(doc.text_of("b").unwrap(), "1 & 2");
        assert_eq!(doc.items("set").len(), 2);
        assert_eq!(doc.items("set")[0].items("set")[0].text, "n");
        for bad in ["", "<a>", "<a></b>", "</a>", "<a><", "<<>>", "<a/></a>"] {
            assert!(parse_xml(bad).is_none() || bad == "<a>", "{bad}");
        }
    }

    #[test]
    fn profiles() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        std::fs::write(
            &p,
            "[operator]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n\n[customer]\naws_access_key_id=AKIA2\naws_secret_access_key=s2\n",
        )
        .unwrap();
        assert_eq!(read_profile(&p, "customer").unwrap().access_key_id, "AKIA2");
        assert!(read_profile(&p, "nobody").is_err());
    }
}
