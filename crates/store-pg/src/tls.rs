//! TLS to PostgreSQL, as libpq's connection parameters ask for it: `sslmode`
//! (`disable`, `prefer` — the default —, `require`, `verify-ca`, `verify-full`), `sslrootcert`
//! (a PEM file of the certificates to trust, or `system` for the operating system's store),
//! `sslcert` and `sslkey` (a client certificate, PEM). rustls with ring: no OpenSSL.
//!
//! tokio-postgres knows `sslmode` up to `require` and none of the file parameters, so
//! [`split`] takes them off the URL (or key-value string) before tokio-postgres reads the rest.
//!
//! What each mode checks, as libpq does:
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` | when the server offers it | only if `sslrootcert` is given (as `verify-ca`) |
//! | `require` | always | only if `sslrootcert` is given (as `verify-ca`) |
//! | `verify-ca` | always | chain to a trusted root (`sslrootcert`, default the system store) |
//! | `verify-full` | always | chain, and the host name (or IP) in the certificate |
//!
//! Errors name the parameter and the file, never the password.

use std::sync::Arc;

use offload_store::StoreError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How far the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Mode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it.
    #[default]
    Prefer,
    /// TLS always.
    Require,
    /// TLS, the chain checked.
    VerifyCa,
    /// TLS, the chain and the host checked.
    VerifyFull,
}

/// The TLS parameters of a connection string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) mode: Mode,
    pub(crate) root_cert: Option<String>,
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
}

fn invalid(message: String) -> StoreError {
    StoreError::Engine(message)
}

fn set(params: &mut Params, key: &str, value: String) -> Result<bool, StoreError> {
    match key {
        "sslmode" => {
            params.mode = match value.as_str() {
                "disable" => Mode::Disable,
                "allow" | "prefer" => Mode::Prefer,
                "require" => Mode::Require,
                "verify-ca" => Mode::VerifyCa,
                "verify-full" => Mode::VerifyFull,
                other => {
                    return Err(invalid(format!(
                        "sslmode={other:?} is not disable, allow, prefer, require, verify-ca or verify-full"
                    )))
                }
            };
        }
        "sslrootcert" => params.root_cert = Some(value),
        "sslcert" => params.cert = Some(value),
        "sslkey" => params.key = Some(value),
        _ => return Ok(false),
    }
    Ok(true)
}

/// `%XX` decoded (a query value).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(
                    u8::try_from(hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)).unwrap_or(b'?'),
                );
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Takes the TLS parameters off a connection string: `postgres://…?sslmode=…&sslrootcert=…`
/// or the key-value form (`host=… sslmode=…`; values without spaces). Returns the rest for
/// tokio-postgres.
///
/// # Errors
///
/// [`StoreError::Engine`] for an unknown `sslmode`.
pub(crate) fn split(url: &str) -> Result<(String, Params), StoreError> {
    let mut params = Params::default();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), params));
        };
        let mut kept = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            if !set(&mut params, k, percent_decode(v))? {
                kept.push(part);
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, params));
    }
    let mut kept = Vec::new();
    for token in url.split_whitespace() {
        let (k, v) = token.split_once('=').unwrap_or((token, ""));
        if !set(&mut params, k, v.trim_matches('\'').to_owned())? {
            kept.push(token);
        }
    }
    Ok((kept.join(" "), params))
}

/// tokio-postgres's `sslmode` for `mode` (the checks are the connector's).
pub(crate) fn ssl_mode(mode: Mode) -> SslMode {
    match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    }
}

fn roots(root_cert: Option<&str>) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match root_cert {
        None | Some("system") => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                return Err(invalid(format!(
                    "sslrootcert: no certificate in the system store ({} errors); give a file",
                    found.errors.len()
                )));
            }
            let _ = store.add_parsable_certificates(found.certs);
        }
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| invalid(format!("sslrootcert: cannot read {path}: {e}")))?;
            if certs.is_empty() {
                return Err(invalid(format!("sslrootcert: no certificate in {path}")));
            }
            for c in certs {
                store
                    .add(c)
                    .map_err(|e| invalid(format!("sslrootcert: {path}: {e}")))?;
            }
        }
    }
    Ok(store)
}

/// The connector for `params`.
///
/// # Errors
///
/// [`StoreError::Engine`] naming the parameter and the file that cannot be used.
pub(crate) fn connector(params: &Params) -> Result<MakeRustlsConnect, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let check_chain = matches!(params.mode, Mode::VerifyCa | Mode::VerifyFull)
        || (params.root_cert.is_some() && params.mode != Mode::Disable);
    let verifier: Arc<dyn ServerCertVerifier> = if check_chain {
        let webpki = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots(params.root_cert.as_deref())?),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| invalid(format!("sslrootcert: {e}")))?;
        Arc::new(Verifier {
            webpki: Some(webpki),
            check_host: params.mode == Mode::VerifyFull,
            provider: Arc::clone(&provider),
        })
    } else {
        Arc::new(Verifier {
            webpki: None,
            check_host: false,
            provider: Arc::clone(&provider),
        })
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match (&params.cert, &params.key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| invalid(format!("sslcert: cannot read {cert}: {e}")))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| invalid(format!("sslkey: cannot read {key}: {e}")))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| invalid(format!("sslcert/sslkey: {e}")))?
        }
        _ => {
            return Err(invalid(
                "sslcert and sslkey go together: give both or neither".into(),
            ))
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// Checks the server's certificate as the mode asks: nothing but the handshake's signatures
/// (`prefer`/`require` without a root), the chain (`verify-ca`), or the chain and the host
/// (`verify-full`).
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    check_host: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_host => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_come_off_the_url_and_the_rest_stays() {
        let (rest, p) = split(
            "postgres://u:secret@db.example:5433/jobs?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:secret@db.example:5433/jobs?application_name=x"
        );
        assert_eq!(p.mode, Mode::VerifyFull);
        assert_eq!(p.root_cert.as_deref(), Some("/etc/ca.pem"));
        let (rest, p) = split("postgres://u@h/db?sslmode=require").unwrap();
        assert_eq!(
            (rest.as_str(), p.mode),
            ("postgres://u@h/db", Mode::Require)
        );
        let (rest, p) =
            split("host=h user=u sslmode=verify-ca sslcert=/c sslkey='/k' dbname=d").unwrap();
        assert_eq!(rest, "host=h user=u dbname=d");
        assert_eq!(p.mode, Mode::VerifyCa);
        assert_eq!(
            (p.cert.as_deref(), p.key.as_deref()),
            (Some("/c"), Some("/k"))
        );
        assert_eq!(split("postgres://u@h/db").unwrap().1, Params::default());
        let e = split("postgres://u:secret@h/db?sslmode=always")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sslmode=\"always\"") && !e.contains("secret"),
            "{e}"
        );
    }

    #[test]
    fn unusable_files_are_named() {
        let p = Params {
            mode: Mode::VerifyCa,
            root_cert: Some("/nonexistent/ca.pem".into()),
            ..Params::default()
        };
        let e = connector(&p).err().unwrap().to_string();
        assert!(
            e.contains("sslrootcert: cannot read /nonexistent/ca.pem"),
            "{e}"
        );
        let p = Params {
            cert: Some("/c.pem".into()),
            ..Params::default()
        };
        let e = connector(&p).err().unwrap().to_string();
        assert!(e.contains("sslcert and sslkey go together"), "{e}");
        assert!(connector(&Params::default()).is_ok());
    }
}
