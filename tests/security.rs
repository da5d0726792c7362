//! TLS to engines, engine credentials (Basic, SASLogon OAuth2 bearer) and
//! the admin API's credentials, end to end through the real binary on
//! 127.0.0.1, with a test CA made by rcgen at test time and a token
//! endpoint stand-in on a thread of this process.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::StandIn;

const ENGINE_PASSWORD: &str = "S3cret-engine-pw-9f2";
const ADMIN_PASSWORD: &str = "adm1n-S3cret-77d";
const ADMIN_TOKEN: &str = "admin-token-5c1e0b";

/// A folder with the demo's project, `n` trades and a one-engine config.
struct Case {
    dir: PathBuf,
    trades: u64,
}

impl Case {
    fn new(name: &str, trades: u64) -> Case {
        let dir = support::scratch(name);
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/demo");
        std::fs::copy(demo.join("surveillance.xml"), dir.join("surveillance.xml")).unwrap();
        let mut f = std::fs::File::create(dir.join("trades.csv")).unwrap();
        edgecm::demo::trades_csv(trades, &mut f).unwrap();
        Case { dir, trades }
    }

    /// The config: trades multicast to one engine at `host:port`.
    fn config(&self, host: &str, port: u16, tls: bool, auth_user: Option<&str>, rate: u32) {
        let engine = format!("host='{host}' port='1' ha_port='{port}' tls='{tls}'");
        self.config_engine(&engine, auth_user, rate);
    }

    /// The config with the engine's attributes (besides its name) as given.
    fn config_engine(&self, engine: &str, auth_user: Option<&str>, rate: u32) {
        let auth = auth_user.map_or(String::new(), |u| format!("<auth-user>{u}</auth-user>"));
        let rate = if rate > 0 {
            format!("<property name='rate'>{rate}</property>")
        } else {
            String::new()
        };
        let xml = format!(
            "<engine><esp-cluster-managers><esp-cluster-manager name='sec'>
  <projects><project name='surveillance' type='reference'>
    <project-url>file://surveillance.xml</project-url><project-name>surveillance</project-name>
  </project></projects>
  <raw-sources><raw-source name='trades' class='fs'><properties>
    <property name='type'>pub</property><property name='fstype'>csv</property>
    <property name='fsname'>trades.csv</property><property name='blocksize'>32</property>
    <property name='dateformat'>%Y-%m-%d %H:%M:%S</property>{rate}
  </properties></raw-source></raw-sources>
  <esp-maps><esp-map name='m' cluster-ref='c' model-ref='surveillance'>
    <map name='tradesMap'><from source='trades'/>
      <multicast-destination name='all' opcode='insert'><publish-target>
        <project-func>surveillance</project-func><contquery-func>watch</contquery-func>
        <window-func>trades</window-func></publish-target></multicast-destination>
    </map></esp-map></esp-maps>
  <esp-clusters><esp-cluster name='c' redundancy='1'><esp-engines>
    <esp-engine name='esp1' {engine}>{auth}</esp-engine>
  </esp-engines></esp-cluster></esp-clusters>
</esp-cluster-manager></esp-cluster-managers></engine>"
        );
        std::fs::write(self.dir.join("cm.xml"), xml).unwrap();
    }

    fn manager(&self, extra: &[&str]) -> Child {
        let log = std::fs::File::create(self.dir.join("manager.log")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_edgecm"))
            .arg("-cluster-manager")
            .arg(self.dir.join("cm.xml"))
            .arg("-state-dir")
            .arg(self.dir.join("state"))
            .args(["-ticktime", "200", "-loglevel", "debug"])
            .args(extra)
            .env_remove("AUTHINFO")
            .env_remove("NETRC")
            .env("HOME", &self.dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the manager")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("manager.log")).unwrap_or_default()
    }

    fn recorded(&self) -> usize {
        std::fs::read_to_string(self.dir.join("esp1/surveillance.watch.trades.csv"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Waits (bounded) until `done`, failing with the log if the manager exits.
    fn wait(&self, what: &str, m: &mut Child, mut done: impl FnMut(&Case) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(240);
        while !done(self) {
            if let Ok(Some(s)) = m.try_wait() {
                panic!(
                    "the manager exited ({s}) before {what}; log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not reached; {} recorded; log:\n{}",
                self.recorded(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn write_private(&self, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// No secret of these tests appears in the manager's log.
    fn assert_no_secrets(&self, extra: &[&str]) {
        let log = self.log();
        for s in [ENGINE_PASSWORD, ADMIN_PASSWORD, ADMIN_TOKEN]
            .iter()
            .chain(extra)
        {
            assert!(!log.contains(s), "a secret is in the log: {s}\n{log}");
        }
        let basic = edgecm::auth::base64(format!("esp:{ENGINE_PASSWORD}").as_bytes());
        assert!(!log.contains(&basic), "a Basic credential is in the log");
    }
}

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------- TLS

struct Pki {
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn ca(name: &str) -> Pki {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, format!("edgecm test CA {name}"));
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = p.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        issuer: rcgen::Issuer::new(p, key),
    }
}

impl Pki {
    /// A server certificate for `names`, valid `from`..`to` (years).
    fn leaf(&self, dir: &Path, names: &[&str], years: (i32, i32)) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        p.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let (c, k) = (dir.join("engine.crt"), dir.join("engine.key"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn write_ca(&self, dir: &Path) -> PathBuf {
        let p = dir.join("ca.pem");
        std::fs::write(&p, &self.ca_pem).unwrap();
        p
    }
}

fn tls_engine(case: &Case, cert: &(PathBuf, PathBuf)) -> StandIn {
    tls_engine_with(case, cert, &[])
}

/// [`tls_engine`] with more stand-in arguments.
fn tls_engine_with(case: &Case, cert: &(PathBuf, PathBuf), extra: &[&str]) -> StandIn {
    let rec = case.dir.join("esp1");
    let mut args = vec![
        "-record",
        rec.to_str().unwrap(),
        "-tls-cert",
        cert.0.to_str().unwrap(),
        "-tls-key",
        cert.1.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    StandIn::start(0, &args)
}

#[test]
fn https_to_an_engine_with_a_private_ca_delivers_everything() {
    let case = Case::new("tls-ok", 3000);
    let pki = ca("ok");
    let cert = pki.leaf(&case.dir, &["localhost"], (2020, 2090));
    let engine = tls_engine(&case, &cert);
    case.config("localhost", engine.port, true, None, 0);
    let ca = pki.write_ca(&case.dir);
    let mut m = Stop(case.manager(&["-cacert", ca.to_str().unwrap()]));
    case.wait("all trades recorded over HTTPS", &mut m.0, |c| {
        c.recorded() >= c.trades as usize
    });
    assert_eq!(case.recorded(), 3000);
}

/// An engine behind a Kubernetes ingress: its REST API under a path
/// (`-base-prefix`), its name not in DNS yet (`connect`, like `curl
/// --resolve`), HTTPS checked against that name.
#[test]
fn an_engine_behind_an_ingress_path_under_a_name_that_does_not_resolve() {
    let case = Case::new("tls-ingress", 2000);
    let pki = ca("ingress");
    let name = "esp-server.example.invalid";
    let cert = pki.leaf(&case.dir, &[name], (2020, 2090));
    let rec = case.dir.join("esp1");
    let prefix = "/SASEventStreamProcessingServer/surveillance";
    let engine = tls_engine_with(&case, &cert, &["-base-prefix", prefix]);
    case.config_engine(
        &format!(
            "url='https://{name}{prefix}/' connect='127.0.0.1:{}'",
            engine.port
        ),
        None,
        0,
    );
    let ca = pki.write_ca(&case.dir);
    let mut m = Stop(case.manager(&["-cacert", ca.to_str().unwrap()]));
    case.wait(
        "all trades recorded through the ingress path",
        &mut m.0,
        |c| c.recorded() >= c.trades as usize,
    );
    assert_eq!(case.recorded(), 2000);
    let log = case.log();
    assert!(
        log.contains("REST API at /eventStreamProcessing/v1"),
        "{log}"
    );
    let wire = std::fs::read_to_string(rec.join("wire.log")).unwrap();
    assert!(wire.starts_with("load surveillance "), "{wire}");
    drop(m);
    // The same with the REST base in the URL, as Viya documents it.
    let case2 = Case::new("tls-ingress-base", 500);
    let cert2 = pki.leaf(&case2.dir, &[name], (2020, 2090));
    let engine2 = tls_engine_with(&case2, &cert2, &["-base-prefix", prefix, "-base", "v1"]);
    case2.config_engine(
        &format!(
            "url='https://{name}{prefix}/eventStreamProcessing/v1/' connect='127.0.0.1:{}'",
            engine2.port
        ),
        None,
        0,
    );
    let ca2 = pki.write_ca(&case2.dir);
    let mut m2 = Stop(case2.manager(&["-cacert", ca2.to_str().unwrap()]));
    case2.wait("all trades recorded", &mut m2.0, |c| {
        c.recorded() >= c.trades as usize
    });
}

/// Each bad certificate: the engine fails with rustls's reason in the log,
/// and nothing is delivered (the source waits for a deployed engine).
#[test]
fn bad_certificates_fail_the_engine_with_the_reason() {
    let good = ca("good");
    let other = ca("other");
    type Leaf = fn(&Pki, &Pki, &Path) -> (PathBuf, PathBuf);
    let cases: [(&str, Leaf, &[&str]); 3] = [
        (
            "wrong-host",
            |g, _, d| g.leaf(d, &["other.example"], (2020, 2090)),
            &["NotValidForName", "not valid for name"],
        ),
        (
            "unknown-ca",
            |_, o, d| o.leaf(d, &["localhost"], (2020, 2090)),
            &["UnknownIssuer", "unknown issuer"],
        ),
        (
            "expired",
            |g, _, d| g.leaf(d, &["localhost"], (2000, 2001)),
            &["Expired", "expired"],
        ),
    ];
    for (name, leaf, reasons) in cases {
        let case = Case::new(&format!("tls-{name}"), 200);
        let cert = leaf(&good, &other, &case.dir);
        let engine = tls_engine(&case, &cert);
        case.config("localhost", engine.port, true, None, 0);
        let ca = good.write_ca(&case.dir);
        let mut m = Stop(case.manager(&["-cacert", ca.to_str().unwrap()]));
        case.wait(&format!("{name}: the reason logged"), &mut m.0, |c| {
            let log = c.log();
            reasons.iter().any(|r| log.contains(r)) && log.contains("failed after")
        });
        assert_eq!(
            case.recorded(),
            0,
            "{name}: delivered despite a bad certificate"
        );
    }
}

// ---------------------------------------------------------------- Basic

#[test]
fn basic_credentials_come_from_the_authinfo_file() {
    let case = Case::new("basic", 2000);
    let rec = case.dir.join("esp1");
    let up = format!("esp:{ENGINE_PASSWORD}");
    let engine = StandIn::start(
        0,
        &["-record", rec.to_str().unwrap(), "-require-basic", &up],
    );
    case.config("127.0.0.1", engine.port, false, Some("esp"), 0);

    // World-readable: refused, with the fix.
    let info = case.dir.join("authinfo");
    std::fs::write(
        &info,
        format!(
            "# test\nhost 127.0.0.1 port {} user esp password \"{ENGINE_PASSWORD}\"\n",
            engine.port
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&info, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut m = case.manager(&["-auth", "-authinfo", info.to_str().unwrap()]);
    let status = m.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(case.log().contains("chmod 600"), "{}", case.log());

    // Found through $HOME/.authinfo, mode 600: delivered.
    let text = std::fs::read_to_string(&info).unwrap();
    case.write_private(".authinfo", &text);
    let mut m = Stop(case.manager(&["-auth"]));
    case.wait("all trades recorded with Basic", &mut m.0, |c| {
        c.recorded() >= 2000
    });
    drop(m);
    case.assert_no_secrets(&[]);

    // A wrong password: 401s, an engine failure, nothing dead-lettered.
    let case = Case::new("basic-wrong", 200);
    let rec = case.dir.join("esp1");
    let engine = StandIn::start(
        0,
        &["-record", rec.to_str().unwrap(), "-require-basic", &up],
    );
    case.config("127.0.0.1", engine.port, false, Some("esp"), 0);
    let info = case.write_private(
        "authinfo",
        &format!(
            "host 127.0.0.1 port {} user esp password wrong-{ENGINE_PASSWORD}\n",
            engine.port
        ),
    );
    let mut m = Stop(case.manager(&["-auth", "-authinfo", info.to_str().unwrap()]));
    case.wait("401 makes the engine fail", &mut m.0, |c| {
        c.log().contains("HTTP 401") && c.log().contains("failed after")
    });
    assert_eq!(case.recorded(), 0);
    assert!(!case.dir.join("state/deadletter").exists() && !case.log().contains("dead letter"));
    case.assert_no_secrets(&[]);
}

// ---------------------------------------------------------------- OAuth2

/// A SASLogon token endpoint stand-in: password grant for client `sas.ec`
/// and user `esp`; each token it issues replaces the engine's accepted one.
struct TokenEndpoint {
    port: u16,
    issued: Arc<AtomicU64>,
    tokens: PathBuf,
}

fn token_endpoint(tokens: PathBuf, expires_in: u64) -> TokenEndpoint {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let issued = Arc::new(AtomicU64::new(0));
    let (n, file) = (issued.clone(), tokens.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // head, then Content-Length bytes
            let (head, body) = loop {
                let Ok(k) = s.read(&mut chunk) else {
                    break (String::new(), String::new());
                };
                if k == 0 {
                    break (String::new(), String::new());
                }
                buf.extend_from_slice(&chunk[..k]);
                let t = String::from_utf8_lossy(&buf).into_owned();
                if let Some((h, b)) = t.split_once("\r\n\r\n") {
                    let len: usize = h
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if b.len() >= len {
                        break (h.to_string(), b.to_string());
                    }
                }
            };
            let client_ok = head.contains("Authorization: Basic c2FzLmVjOg==");
            let form_ok =
                body == format!("grant_type=password&username=esp&password={ENGINE_PASSWORD}");
            let (status, json) = if head.starts_with("POST /SASLogon/oauth/token ")
                && client_ok
                && form_ok
            {
                let k = n.fetch_add(1, Ordering::SeqCst) + 1;
                let token = format!("tok-{k}-{:08x}", fastrand::u32(..));
                std::fs::write(&file, format!("{token}\n")).unwrap();
                (
                    "200 OK",
                    format!("{{\"access_token\":\"{token}\",\"token_type\":\"bearer\",\"expires_in\":{expires_in},\"scope\":[\"openid\"]}}"),
                )
            } else {
                (
                    "401 Unauthorized",
                    "{\"error\":\"unauthorized\",\"error_description\":\"Bad credentials\"}"
                        .to_string(),
                )
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            );
        }
    });
    TokenEndpoint {
        port,
        issued,
        tokens,
    }
}

#[test]
fn bearer_tokens_are_renewed_before_expiry_and_after_a_401_without_loss() {
    let trades = 4000;
    let case = Case::new("oauth", trades);
    let tokens = case.dir.join("tokens");
    std::fs::write(&tokens, "none-yet\n").unwrap();
    let ep = token_endpoint(tokens.clone(), 2);
    let rec = case.dir.join("esp1");
    let accept = format!("@{}", tokens.display());
    let engine = StandIn::start(
        0,
        &["-record", rec.to_str().unwrap(), "-require-bearer", &accept],
    );
    case.config("127.0.0.1", engine.port, false, Some("esp"), 800);
    let info = case.write_private(
        "authinfo",
        &format!(
            "host 127.0.0.1 port {} user esp password {ENGINE_PASSWORD}\n",
            engine.port
        ),
    );
    let url = format!("http://127.0.0.1:{}/SASLogon", ep.port);
    let mut m = Stop(case.manager(&[
        "-auth",
        "-authinfo",
        info.to_str().unwrap(),
        "-saslogon-url",
        &url,
    ]));
    // Renewed before expiry (2 s tokens, renewed at 1.6 s) while events flow.
    case.wait("a token renewed before expiry", &mut m.0, |c| {
        ep.issued.load(Ordering::SeqCst) >= 2 && c.recorded() > 0
    });
    assert!(
        !case.log().contains("401 to the bearer token"),
        "a 401 before any revocation:\n{}",
        case.log()
    );
    // Revoke the current token mid-stream: the next request gets 401.
    let before = ep.issued.load(Ordering::SeqCst);
    std::fs::write(&ep.tokens, "revoked-by-the-test\n").unwrap();
    case.wait("a new token after the 401", &mut m.0, |c| {
        c.log().contains("401 to the bearer token") && ep.issued.load(Ordering::SeqCst) > before
    });
    case.wait("every trade recorded", &mut m.0, |c| {
        c.recorded() >= trades as usize
    });
    drop(m);
    // Each trade exactly once or more, none missing.
    let lines = std::fs::read_to_string(rec.join("surveillance.watch.trades.csv")).unwrap();
    let mut ids: Vec<u64> = lines
        .lines()
        .filter_map(|l| l.split(',').nth(2).and_then(|v| v.parse().ok()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), trades as usize);
    let issued: Vec<String> = std::fs::read_to_string(&tokens)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let issued: Vec<&str> = issued.iter().map(String::as_str).collect();
    case.assert_no_secrets(&issued);
    assert!(!case.log().contains("tok-"), "a token is in the log");
}

// ---------------------------------------------------------------- admin API

fn admin_request(port: u16, authz: Option<&str>) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let a = authz.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(
        s,
        "GET /eventStreamProcessing/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{a}\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_admin_api_wants_credentials_with_auth() {
    let case = Case::new("admin-auth", 10);
    let rec = case.dir.join("esp1");
    let engine = StandIn::start(0, &["-record", rec.to_str().unwrap()]);
    case.config("127.0.0.1", engine.port, false, None, 0);
    let info = case.write_private(
        "authinfo",
        &format!("host localhost user admin password {ADMIN_PASSWORD}\n"),
    );
    let token = case.write_private("token", &format!("{ADMIN_TOKEN}\n"));
    let mut m = Stop(case.manager(&[
        "-auth",
        "-authinfo",
        info.to_str().unwrap(),
        "-admin-token-file",
        token.to_str().unwrap(),
        "-http",
        "0",
    ]));
    let mut port = 0;
    case.wait("the admin port logged", &mut m.0, |c| {
        port = c
            .log()
            .split("admin API on http://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        port != 0
    });
    assert_eq!(admin_request(port, None), 401);
    assert_eq!(
        admin_request(port, Some(&edgecm::auth::basic("admin", "wrong"))),
        401
    );
    assert_eq!(admin_request(port, Some("Bearer wrong-token")), 401);
    assert_eq!(
        admin_request(port, Some(&edgecm::auth::basic("admin", ADMIN_PASSWORD))),
        200
    );
    assert_eq!(
        admin_request(port, Some(&format!("Bearer {ADMIN_TOKEN}"))),
        200
    );
    drop(m);
    assert!(case.log().contains("refused, wrong credentials"));
    case.assert_no_secrets(&[]);
}

#[test]
fn the_admin_api_stays_on_loopback_without_auth() {
    let case = Case::new("admin-open", 10);
    case.config("127.0.0.1", 1, false, None, 0);
    // Refused before anything is bound.
    let mut m = case.manager(&["-http", "0.0.0.0:0"]);
    assert_eq!(m.wait().unwrap().code(), Some(2));
    let log = case.log();
    assert!(
        log.contains("-insecure-admin") && log.contains("-auth"),
        "{log}"
    );
    // -auth with nothing that could be accepted: refused too.
    let mut m = case.manager(&["-auth", "-http", "0"]);
    assert_eq!(m.wait().unwrap().code(), Some(2));
    assert!(case.log().contains("would accept no one"), "{}", case.log());
}
