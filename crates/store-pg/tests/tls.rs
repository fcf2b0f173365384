//! TLS to PostgreSQL against the local server with SSL turned on by this test: a CA made here
//! signs the server's certificate (for `localhost` only) and a client certificate; a second CA
//! plays the stranger. Every `sslmode` is checked for what it promises, the server's own view
//! (`pg_stat_ssl`) says whether a session is encrypted, and no error shows the password.
//!
//! One test function: the server's SSL settings are one shared thing. It puts them back at the
//! end (other tests keep connecting throughout: `prefer` takes TLS while it is on).

use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use offload_store_pg::testing::{admin_url, TestDb};
use offload_store_pg::PgStore;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio_postgres::NoTls;

const PASSWORD: &str = "hunter2-not-shown";

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A certificate for `names` (DNS names; a CN for a client) signed by `ca`: (cert, key) PEM.
fn leaf(ca: &Ca, names: &[&str], cn: &str) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Like [`leaf`], but valid only in 2020: expired.
fn expired_leaf(ca: &Ca, names: &[&str], cn: &str) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 12, 31);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn connect_admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&admin_url(), NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

async fn show(client: &tokio_postgres::Client, name: &str) -> String {
    client
        .query_one(&format!("SHOW {name}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Writes `text` into the server's folder for it, owned by the server's user.
fn write_for_server(dir: &Path, name: &str, text: &str, owner: (u32, u32)) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown(&path, Some(owner.0), Some(owner.1)).unwrap();
    path
}

/// The server's settings this test changes, as they were.
const SETTINGS: [&str; 4] = ["ssl", "ssl_cert_file", "ssl_key_file", "ssl_ca_file"];

/// Turns the server's SSL on with `files`, or (`None`) back to its configuration's own
/// settings (`original` is what `SHOW` said before: Debian turns SSL on with its own
/// certificate), and waits until new sessions see it.
async fn set_ssl(
    client: &tokio_postgres::Client,
    files: Option<(&Path, &Path, &Path)>,
    original: &[String],
) {
    let want: Vec<String> = match files {
        Some((cert, key, ca)) => {
            let paths = [cert, key, ca].map(|p| p.display().to_string());
            for (k, v) in SETTINGS[1..].iter().zip(&paths) {
                let v = v.replace('\'', "''");
                client
                    .batch_execute(&format!("ALTER SYSTEM SET {k} = '{v}'"))
                    .await
                    .unwrap();
            }
            client
                .batch_execute("ALTER SYSTEM SET ssl = on")
                .await
                .unwrap();
            std::iter::once("on".to_owned()).chain(paths).collect()
        }
        None => {
            for k in SETTINGS {
                client
                    .batch_execute(&format!("ALTER SYSTEM RESET {k}"))
                    .await
                    .unwrap();
            }
            original.to_vec()
        }
    };
    client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    // The reload is asynchronous: a new session sees it once the postmaster has read it.
    for _ in 0..200 {
        if shown(&connect_admin().await).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server's SSL settings did not become {want:?}");
}

async fn shown(client: &tokio_postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for k in SETTINGS {
        out.push(show(client, k).await);
    }
    out
}

/// Whether the session of `application_name` is encrypted, as the server sees it.
async fn encrypted(admin: &tokio_postgres::Client, app: &str) -> Vec<bool> {
    admin
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The scratch database's URL with a password, host `host` and `query`.
fn url(db: &TestDb, host: &str, app: &str, query: &str) -> String {
    let rest = db.url.split_once("@127.0.0.1").map(|(_, r)| r).unwrap();
    format!("postgres://postgres:{PASSWORD}@{host}{rest}?application_name={app}&{query}")
}

async fn refused(url: &str) -> String {
    let e = PgStore::connect(url)
        .await
        .err()
        .unwrap_or_else(|| panic!("{url} connected"))
        .to_string();
    assert!(!e.contains(PASSWORD), "the password is in the error: {e}");
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sslmode_does_what_it_promises_against_a_server_with_ssl_on() {
    let db = TestDb::create();
    let admin = connect_admin().await;
    let data_dir = PathBuf::from(show(&admin, "data_directory").await);
    let meta = std::fs::metadata(&data_dir).unwrap();
    let owner = (meta.uid(), meta.gid());
    let dir = data_dir.join("offload-test-tls");
    std::fs::create_dir_all(&dir).unwrap();
    chown(&dir, Some(owner.0), Some(owner.1)).unwrap();

    let good = ca("offload test CA");
    let stranger = ca("someone else's CA");
    let (server_cert, server_key) = leaf(&good, &["localhost"], "localhost");
    let cert = write_for_server(&dir, "server.pem", &server_cert, owner);
    let key = write_for_server(&dir, "server.key", &server_key, owner);
    let ca_file = write_for_server(&dir, "ca.pem", &good.pem, owner);
    let original = shown(&admin).await;
    set_ssl(&admin, Some((&cert, &key, &ca_file)), &original).await;

    // The client's files, readable by this test only.
    let client_dir = tempfile::tempdir().unwrap();
    let put = |name: &str, text: &str| {
        let p = client_dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let root = put("root.pem", &good.pem);
    let wrong_root = put("wrong-root.pem", &stranger.pem);
    let (c, k) = leaf(&good, &[], "postgres");
    let (client_cert, client_key) = (put("client.pem", &c), put("client.key", &k));
    let (c, k) = leaf(&stranger, &[], "postgres");
    let (bad_cert, bad_key) = (put("bad-client.pem", &c), put("bad-client.key", &k));

    let checker = connect_admin().await;
    let (server_dir, settings) = (dir.clone(), original.clone());
    let outcome = async move {
        let admin = checker;
        let _dir = client_dir;
        // verify-full: the chain and the name (localhost is in the certificate).
        let app = "tls-verify-full";
        let store = PgStore::connect(&url(
            &db,
            "localhost",
            app,
            &format!("sslmode=verify-full&sslrootcert={root}"),
        ))
        .await
        .unwrap();
        assert_eq!(encrypted(&admin, app).await, [true]);
        drop(store);

        // verify-full to 127.0.0.1: the certificate does not name it.
        let e = refused(&url(
            &db,
            "127.0.0.1",
            "tls-name",
            &format!("sslmode=verify-full&sslrootcert={root}"),
        ))
        .await;
        assert!(
            e.contains("certificate not valid for name \"127.0.0.1\""),
            "{e}"
        );

        // verify-ca: the chain only, so 127.0.0.1 is fine.
        let app = "tls-verify-ca";
        let _store = PgStore::connect(&url(
            &db,
            "127.0.0.1",
            app,
            &format!("sslmode=verify-ca&sslrootcert={root}"),
        ))
        .await
        .unwrap();
        assert_eq!(encrypted(&admin, app).await, [true]);

        // A server signed by a CA the client does not trust is refused, by every checking mode.
        for mode in ["verify-full", "verify-ca", "require", "prefer"] {
            let e = refused(&url(
                &db,
                "localhost",
                "tls-wrong-ca",
                &format!("sslmode={mode}&sslrootcert={wrong_root}"),
            ))
            .await;
            assert!(
                e.contains("invalid peer certificate")
                    && e.to_lowercase().replace(' ', "").contains("unknownissuer"),
                "{mode}: {e}"
            );
        }

        // require without a root: encrypted, the certificate not checked (libpq's meaning).
        let app = "tls-require";
        let _store = PgStore::connect(&url(&db, "127.0.0.1", app, "sslmode=require"))
            .await
            .unwrap();
        assert_eq!(encrypted(&admin, app).await, [true]);

        // prefer (the default) takes TLS when the server offers it; disable never does.
        let app = "tls-default";
        let _store = PgStore::connect(&url(&db, "127.0.0.1", app, "connect_timeout=10"))
            .await
            .unwrap();
        assert_eq!(encrypted(&admin, app).await, [true]);
        let app = "tls-disable";
        let _store = PgStore::connect(&url(&db, "127.0.0.1", app, "sslmode=disable"))
            .await
            .unwrap();
        assert_eq!(encrypted(&admin, app).await, [false]);

        // A client certificate from the server's CA is accepted; one from a stranger is not.
        let app = "tls-client-cert";
        let _store = PgStore::connect(&url(
            &db,
            "localhost",
            app,
            &format!(
                "sslmode=verify-full&sslrootcert={root}&sslcert={client_cert}&sslkey={client_key}"
            ),
        ))
        .await
        .unwrap();
        let dn: Vec<Option<String>> = admin
            .query("SELECT s.client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1", &[&app])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(dn, [Some("/CN=postgres".to_owned())]);
        refused(&url(
            &db,
            "localhost",
            "tls-bad-client",
            &format!("sslmode=verify-full&sslrootcert={root}&sslcert={bad_cert}&sslkey={bad_key}"),
        ))
        .await;

        // Files that cannot be used are named; so is an unknown mode.
        let e = refused(&url(
            &db,
            "localhost",
            "x",
            "sslmode=verify-full&sslrootcert=/nonexistent/root.pem",
        ))
        .await;
        assert!(
            e.contains("sslrootcert: cannot read /nonexistent/root.pem"),
            "{e}"
        );
        let e = refused(&url(&db, "localhost", "x", "sslmode=sometimes")).await;
        assert!(e.contains("sslmode=\"sometimes\""), "{e}");

        // An expired server certificate from the right CA: refused, saying it expired (the
        // server is switched to it last; the caller puts the original settings back).
        let (c, k) = expired_leaf(&good, &["localhost"], "localhost");
        let expired = write_for_server(&server_dir, "expired.pem", &c, owner);
        let expired_key = write_for_server(&server_dir, "expired.key", &k, owner);
        let ca_again = server_dir.join("ca.pem");
        set_ssl(&admin, Some((&expired, &expired_key, &ca_again)), &settings).await;
        let e = refused(&url(
            &db,
            "localhost",
            "tls-expired",
            &format!("sslmode=verify-full&sslrootcert={root}"),
        ))
        .await;
        assert!(e.to_lowercase().contains("expired"), "{e}");
    };
    // Put the server back whatever happened, then report.
    let result = tokio::spawn(outcome).await;
    set_ssl(&admin, None, &original).await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
