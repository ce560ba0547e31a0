//! LeanNodes as a SAML 2.0 service provider: its metadata, the AuthnRequest (HTTP-Redirect binding),
//! and the assertion consumer (HTTP-POST binding), which accepts only responses whose assertion (or
//! the whole response) is signed by a certificate of the IdP's metadata with an allowed algorithm,
//! issued for this service provider, in answer to a request this service provider made, and within
//! its validity window. Signature verification is `samael`'s (libxmlsec1): it keeps only the signed
//! parts of the document, so an unsigned assertion slipped next to a signed one is never read.

use std::collections::BTreeMap;
use std::sync::Arc;

use leannodes_config::Saml as SamlConfig;
use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::{EntityDescriptor, HTTP_REDIRECT_BINDING};
use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};
use samael::traits::ToXml;

use super::sso::Vouched;
use crate::error::ApiError;

/// The service provider of `[server.auth.saml]`.
pub(crate) struct Saml {
    sp: Arc<ServiceProvider>,
    metadata: String,
    sso_url: String,
    config: SamlConfig,
}

impl std::fmt::Debug for Saml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saml").field("entity_id", &self.config.entity_id).finish_non_exhaustive()
    }
}

/// Why `[server.auth.saml]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SamlError {
    /// The IdP metadata file cannot be read.
    #[error("cannot read the IdP metadata {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not usable metadata.
    #[error("the IdP metadata {path} is not usable: {reason}")]
    Metadata {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "sso_failed", message)
}

impl Saml {
    /// The service provider for `config`, with endpoints under `external_url`. IdP metadata without a
    /// signing certificate is refused (nothing could be verified).
    pub(crate) fn new(config: &SamlConfig, external_url: &str) -> Result<Saml, SamlError> {
        let path = config.idp_metadata.display().to_string();
        let xml = std::fs::read_to_string(&config.idp_metadata).map_err(|source| SamlError::Read { path: path.clone(), source })?;
        let bad = |reason: String| SamlError::Metadata { path: path.clone(), reason };
        let idp: EntityDescriptor = xml.parse().map_err(|e| bad(format!("not SAML metadata ({e})")))?;
        let sp = ServiceProviderBuilder::default()
            .entity_id(config.entity_id.clone())
            .acs_url(format!("{external_url}/api/v1/auth/saml/acs"))
            .metadata_url(format!("{external_url}/api/v1/auth/saml/metadata"))
            .slo_url(format!("{external_url}/api/v1/auth/saml/slo"))
            .idp_metadata(idp)
            .authn_name_id_format("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".to_string())
            .allowed_signature_algorithms(Some(vec![
                AllowedSignatureAlgorithm::RsaSha256,
                AllowedSignatureAlgorithm::RsaSha384,
                AllowedSignatureAlgorithm::RsaSha512,
                AllowedSignatureAlgorithm::EcdsaSha256,
                AllowedSignatureAlgorithm::EcdsaSha384,
                AllowedSignatureAlgorithm::EcdsaSha512,
            ]))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        match sp.idp_signing_certs() {
            Ok(Some(_)) => {}
            Ok(None) => return Err(bad("it has no signing certificate, so no assertion could be verified".into())),
            Err(e) => return Err(bad(format!("its signing certificate cannot be read ({e})"))),
        }
        let sso_url =
            sp.sso_binding_location(HTTP_REDIRECT_BINDING).ok_or_else(|| bad("it has no HTTP-Redirect SingleSignOnService".into()))?;
        let metadata =
            sp.metadata().and_then(|m| m.to_string()).map_err(|e| bad(format!("cannot write this service provider's metadata ({e})")))?;
        Ok(Saml { sp: Arc::new(sp), metadata, sso_url, config: config.clone() })
    }

    /// This service provider's metadata XML.
    pub(crate) fn metadata(&self) -> &str {
        &self.metadata
    }

    /// IdP group → role.
    pub(crate) fn role_map(&self) -> &BTreeMap<String, String> {
        &self.config.role_map
    }

    /// A new AuthnRequest: the URL to send the browser to and the request id the answer must carry.
    pub(crate) fn login(&self) -> Result<(String, String), ApiError> {
        let request = self
            .sp
            .make_authentication_request(&self.sso_url)
            .map_err(|e| ApiError::internal(format!("cannot make a SAML request: {e}")))?;
        let id = request.id.clone();
        let url = request
            .redirect(&id)
            .map_err(|e| ApiError::internal(format!("cannot encode the SAML request: {e}")))?
            .ok_or_else(|| ApiError::internal("the SAML request has no destination"))?;
        Ok((url.to_string(), id))
    }

    /// Verifies a `SAMLResponse` (base64) answering request `request_id`.
    pub(crate) async fn verify(&self, response: &str, request_id: &str) -> Result<Vouched, ApiError> {
        let sp = self.sp.clone();
        let (response, request_id) = (response.chars().filter(|c| !c.is_whitespace()).collect::<String>(), request_id.to_string());
        let assertion = tokio::task::spawn_blocking(move || {
            sp.parse_base64_response(&response, Some(&[request_id.as_str()])).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| ApiError::internal(format!("SAML verification stopped: {e}")))?
        .map_err(|e| refused(format!("the SAML response was refused: {e}")))?;
        let name_id =
            assertion.subject.as_ref().and_then(|s| s.name_id.as_ref()).map(|n| n.value.trim().to_string()).filter(|v| !v.is_empty());
        let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for statement in assertion.attribute_statements.iter().flatten() {
            for attribute in &statement.attributes {
                let values = attribute.values.iter().filter_map(|v| v.value.clone());
                for key in [&attribute.name, &attribute.friendly_name].into_iter().flatten() {
                    attributes.entry(key.clone()).or_default().extend(values.clone());
                }
            }
        }
        let first = |key: &str| attributes.get(key).and_then(|v| v.first()).cloned();
        let email = match &self.config.email_attribute {
            Some(attr) => first(attr),
            None => name_id.clone().filter(|n| n.contains('@')).or_else(|| first("email")),
        };
        let subject = name_id.or_else(|| email.clone()).ok_or_else(|| refused("the assertion names no subject"))?;
        Ok(Vouched {
            identity: format!("saml:{subject}"),
            email: email.map(|e| e.to_lowercase()),
            email_verified: true,
            name: first("name").or_else(|| first("displayName")),
            groups: attributes.get(&self.config.groups_attribute).cloned().unwrap_or_default(),
        })
    }
}
