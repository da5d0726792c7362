//! Running a Cluster Manager config end to end: the config rewritten into a
//! scratch folder so that its engines are stand-ins on 127.0.0.1 (`host`
//! 127.0.0.1, `ha_port` a stand-in's port, no `tls`) and every path is
//! absolute (input files that name gateway paths such as `/var/log/...` are
//! replaced by files the test made), then a manager started on it.

use super::StandIn;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A config rewritten for this machine, its stand-ins and its manager.
pub struct Run {
    pub dir: PathBuf,
    /// The manager's `-state-dir` (`dir/state` unless set before it starts).
    pub state: PathBuf,
    pub engines: Vec<StandIn>,
    pub manager: Option<Child>,
    config: PathBuf,
    manager_args: Vec<String>,
    /// The manager log's length when the current manager started.
    log_from: usize,
}

/// Rewrites `config` (paths relative to its folder) into `dir`: engine
/// hosts and ports to `ports` (in document order), `tls` dropped, project
/// URLs and `fsname`s made absolute; `inputs` maps an `fsname` as written
/// to the file that replaces it.
fn rewrite(config: &Path, dir: &Path, ports: &[u16], inputs: &BTreeMap<&str, PathBuf>) -> PathBuf {
    let text = std::fs::read_to_string(config).unwrap();
    let base = config.parent().unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    // (range, replacement), applied back to front.
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let mut engine = 0;
    for n in doc.descendants().filter(|n| n.is_element()) {
        match n.tag_name().name() {
            "esp-engine" => {
                for a in n.attributes() {
                    match a.name() {
                        "host" => edits.push((a.range_value(), "127.0.0.1".into())),
                        "ha_port" => edits.push((a.range_value(), ports[engine].to_string())),
                        "port" => edits.push((a.range_value(), "1".into())),
                        "tls" => edits.push((a.range(), String::new())),
                        _ => {}
                    }
                }
                engine += 1;
            }
            "project-url" => {
                let t = n.first_child().unwrap();
                let rel = t.text().unwrap().trim().strip_prefix("file://").unwrap();
                let abs = edgecm::config::join_clean(base, rel);
                edits.push((t.range(), format!("file://{}", abs.display())));
            }
            "property" if n.attribute("name") == Some("fsname") => {
                let t = n.first_child().unwrap();
                let name = t.text().unwrap().trim();
                let path = match inputs.get(name) {
                    Some(p) => p.clone(),
                    None => edgecm::config::join_clean(base, name),
                };
                edits.push((t.range(), path.display().to_string()));
            }
            _ => {}
        }
    }
    assert_eq!(engine, ports.len(), "{}: engines", config.display());
    edits.sort_by_key(|e| std::cmp::Reverse(e.0.start));
    let mut out = text.clone();
    for (r, s) in edits {
        out.replace_range(r, &s);
    }
    let path = dir.join(config.file_name().unwrap());
    std::fs::write(&path, out).unwrap();
    path
}

impl Run {
    /// Starts `engines` stand-ins (with `standin_args`), rewrites `config`
    /// for them and starts a manager on it (with `manager_args`).
    pub fn start(
        name: &str,
        config: &Path,
        engines: usize,
        inputs: &BTreeMap<&str, PathBuf>,
        standin_args: &[&str],
        manager_args: &[&str],
    ) -> Run {
        Run::start_edited(
            name,
            config,
            engines,
            inputs,
            standin_args,
            manager_args,
            &|t| t,
        )
    }

    /// [`Run::start`] with `edit` applied to the rewritten config's text.
    pub fn start_edited(
        name: &str,
        config: &Path,
        engines: usize,
        inputs: &BTreeMap<&str, PathBuf>,
        standin_args: &[&str],
        manager_args: &[&str],
        edit: &dyn Fn(String) -> String,
    ) -> Run {
        let each: Vec<Vec<&str>> = (0..engines).map(|_| standin_args.to_vec()).collect();
        Run::start_each(name, config, &each, inputs, manager_args, edit)
    }

    /// [`Run::start_edited`] with each stand-in's own arguments.
    pub fn start_each(
        name: &str,
        config: &Path,
        standin_args: &[Vec<&str>],
        inputs: &BTreeMap<&str, PathBuf>,
        manager_args: &[&str],
        edit: &dyn Fn(String) -> String,
    ) -> Run {
        let mut run = Run::prepare_each(name, config, standin_args, inputs, manager_args, edit);
        run.start_manager();
        run
    }

    /// [`Run::start_each`] without starting the manager ([`Run::start_manager`]).
    pub fn prepare_each(
        name: &str,
        config: &Path,
        standin_args: &[Vec<&str>],
        inputs: &BTreeMap<&str, PathBuf>,
        manager_args: &[&str],
        edit: &dyn Fn(String) -> String,
    ) -> Run {
        let dir = super::scratch(name);
        let engines: Vec<StandIn> = standin_args
            .iter()
            .enumerate()
            .map(|(n, extra)| {
                let rec = dir.join(format!("esp{}", n + 1));
                let mut args = vec!["-record", rec.to_str().unwrap()];
                args.extend_from_slice(extra);
                StandIn::start(0, &args)
            })
            .collect();
        let ports: Vec<u16> = engines.iter().map(|e| e.port).collect();
        let config = rewrite(config, &dir, &ports, inputs);
        let text = edit(std::fs::read_to_string(&config).unwrap());
        std::fs::write(&config, text).unwrap();
        Run {
            state: dir.join("state"),
            dir,
            engines,
            manager: None,
            config,
            manager_args: manager_args.iter().map(|s| s.to_string()).collect(),
            log_from: 0,
        }
    }

    /// Starts the manager (again), on the same state dir; its log is appended.
    pub fn start_manager(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("manager.log"))
            .unwrap();
        self.log_from = self.log().len();
        let extra: Vec<&str> = self.manager_args.iter().map(String::as_str).collect();
        let args: &[&str] = if extra.contains(&"-ticktime") {
            &["-loglevel", "info"]
        } else {
            &["-ticktime", "200", "-loglevel", "info"]
        };
        // A 512 KiB request can take seconds under an emulator with every
        // process on two cores: no engine fails for that here.
        let timeout: &[&str] = if extra.contains(&"-timeout") {
            &[]
        } else {
            &["-timeout", "15000"]
        };
        let m = Command::new(env!("CARGO_BIN_EXE_edgecm"))
            .arg("-cluster-manager")
            .arg(&self.config)
            .arg("-state-dir")
            .arg(&self.state)
            .args(args)
            .args(timeout)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the manager");
        self.manager = Some(m);
    }

    /// The rewritten config the manager reads.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Sends `sig` (`HUP`, `TERM`, ...) to the running manager.
    pub fn signal(&self, sig: &str) {
        let m = self.manager.as_ref().expect("a manager runs");
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &m.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// SIGTERM, and waits (bounded) for the manager to exit.
    pub fn stop_manager(&mut self) {
        let Some(mut m) = self.manager.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &m.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = m.try_wait().unwrap() {
                assert!(s.success(), "exit {s}; log:\n{}", self.log());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the manager did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lines engine `e` (0-based) recorded in `file` (`p.cq.w.csv`, `wire.log`).
    /// Only whole lines: an engine may be writing the last one as we read.
    pub fn lines(&self, e: usize, file: &str) -> Vec<String> {
        super::whole_lines(&self.dir.join(format!("esp{}/{file}", e + 1)))
    }

    /// Lines engine `e` (0-based) recorded for window `p.cq.w`.
    pub fn recorded(&self, e: usize, window: &str) -> Vec<String> {
        self.lines(e, &format!("{window}.csv"))
    }

    /// Distinct ids (third column) engines `0..engines` recorded for `window`.
    pub fn unique_ids(&self, engines: usize, window: &str) -> usize {
        let mut ids: Vec<u64> = (0..engines)
            .flat_map(|e| self.recorded(e, window))
            .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// The manager's log, all runs.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("manager.log")).unwrap_or_default()
    }

    /// The current manager's log.
    pub fn this_log(&self) -> String {
        self.log().get(self.log_from..).unwrap_or("").to_string()
    }

    /// The admin API port the current manager logged (started with `-http 0`).
    pub fn admin_port(&mut self) -> u16 {
        let mut port = 0;
        self.wait_until("the admin API's port logged", |r| {
            port = r
                .this_log()
                .split("admin API on http://127.0.0.1:")
                .nth(1)
                .and_then(|r| r.split('/').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            port != 0
        });
        port
    }

    /// Waits (bounded) until `done`, failing early when the manager exits.
    pub fn wait_until(&mut self, what: &str, done: impl FnMut(&Run) -> bool) {
        // Long enough for emulated ARM with every test in parallel; bounded.
        self.wait_until_for(what, 400, done)
    }

    /// [`Run::wait_until`] with a deadline of `secs` seconds.
    pub fn wait_until_for(&mut self, what: &str, secs: u64, mut done: impl FnMut(&Run) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done(self) {
            if let Some(Ok(Some(s))) = self.manager.as_mut().map(Child::try_wait) {
                panic!("the manager exited early: {s}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "not reached: {what}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut m) = self.manager.take() {
            let _ = m.kill();
            let _ = m.wait();
        }
    }
}
