//! AutoMTLS: go-plugin hands the plugin its client certificate in `PLUGIN_CLIENT_CERT`; the plugin
//! answers with a fresh self-signed server certificate in the handshake line. Each side then
//! trusts exactly the other's certificate, nothing else.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};

use super::ServeError;

/// The server side of one AutoMTLS session.
pub struct AutoMtls {
    /// For the handshake line: DER in unpadded standard base64, as go-plugin expects.
    pub cert_b64: String,
    /// Requires and accepts only Terraform's client certificate; offers ALPN `h2`.
    pub config: Arc<ServerConfig>,
}

/// The aws-lc-rs provider: unlike ring it verifies ECDSA P-521/SHA-512, which is what
/// Terraform's client certificate uses. Passed explicitly so no process-wide default is needed.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Parses the first certificate of a PEM text (the value of `PLUGIN_CLIENT_CERT`).
pub fn parse_client_cert(pem: &str) -> Result<CertificateDer<'static>, ServeError> {
    match CertificateDer::pem_slice_iter(pem.as_bytes()).next() {
        Some(Ok(der)) => Ok(der),
        Some(Err(e)) => Err(ServeError::BadClientCert {
            reason: format!("not a PEM certificate: {e}"),
        }),
        None => Err(ServeError::BadClientCert {
            reason: "no CERTIFICATE block in PLUGIN_CLIENT_CERT".into(),
        }),
    }
}

/// A self-signed certificate for `localhost` (go-plugin's client checks that name), valid as
/// its own root (go-plugin's client puts it in its root pool).
pub fn server_certificate() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), ServeError>
{
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ServeError::CertGen)?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).map_err(ServeError::CertGen)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "tfplug");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.self_signed(&key).map_err(ServeError::CertGen)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key_der))
}

/// Builds the server configuration for a client certificate given as PEM.
pub fn auto_mtls(client_cert_pem: &str) -> Result<AutoMtls, ServeError> {
    let client = parse_client_cert(client_cert_pem)?;
    let (cert, key) = server_certificate()?;
    let provider = crypto_provider();
    let verifier = Arc::new(ExactClientCert {
        expected: client,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ServeError::Tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.clone()], key)
        .map_err(ServeError::Tls)?;
    // grpc-go refuses TLS servers that do not negotiate h2.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(AutoMtls {
        cert_b64: base64::engine::general_purpose::STANDARD_NO_PAD.encode(cert.as_ref()),
        config: Arc::new(config),
    })
}

/// Accepts one client certificate, byte for byte. Chain building would not work here: the
/// certificate is self-signed and marked as a CA, which WebPKI refuses as an end entity.
/// Validity dates are not checked; the pin is per process and the certificate is never reused.
struct ExactClientCert {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for ExactClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExactClientCert")
            .field("expected_len", &self.expected.len())
            .finish()
    }
}

impl ClientCertVerifier for ExactClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_cert_is_base64_der_without_padding() {
        let pem = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap()
            .cert
            .pem();
        let m = auto_mtls(&pem).unwrap();
        assert!(!m.cert_b64.contains('=') && !m.cert_b64.contains('\n'));
        let der = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&m.cert_b64)
            .unwrap();
        assert_eq!(der[0], 0x30, "DER SEQUENCE");
        assert_eq!(m.config.alpn_protocols, vec![b"h2".to_vec()]);
    }

    #[test]
    fn bad_client_cert_is_reported() {
        assert!(matches!(
            parse_client_cert("hello"),
            Err(ServeError::BadClientCert { .. })
        ));
        let broken = "-----BEGIN CERTIFICATE-----\n!!!notbase64\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            parse_client_cert(broken),
            Err(ServeError::BadClientCert { .. })
        ));
    }

    #[test]
    fn only_the_exact_client_cert_is_accepted() {
        let a = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap()
            .cert;
        let b = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap()
            .cert;
        let v = ExactClientCert {
            expected: a.der().clone(),
            algorithms: crypto_provider().signature_verification_algorithms,
        };
        assert!(v.verify_client_cert(a.der(), &[], UnixTime::now()).is_ok());
        assert!(v.verify_client_cert(b.der(), &[], UnixTime::now()).is_err());
        assert!(v
            .supported_verify_schemes()
            .contains(&SignatureScheme::ECDSA_NISTP521_SHA512));
    }
}
