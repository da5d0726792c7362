//! Getting an engine ready: probing its REST base, listing and deploying
//! projects (load / keep / reload-if-changed / adopt, `engine::deployed`),
//! and re-sending reference data to an engine that got its project anew.

use super::*;

impl Sender {
    /// Tries each base path; the first whose `server` answers 2xx wins.
    pub(super) async fn probe(&mut self) -> Result<&'static str, String> {
        let deadline = self.settings.heartbeat_deadline();
        // A known base is tried first (a failed engine coming back).
        let mut order = BASES;
        if self.link.health().base == Some(BASES[1]) {
            order.swap(0, 1);
        }
        let mut answers = Vec::new();
        for base in order {
            let path = format!("{}{base}/server", self.prefix);
            match self.get(&path, deadline).await {
                Ok(r) if r.is_success() => return Ok(base),
                Ok(r) => answers.push(format!("{path}: {}", crate::engine::answer_text(&r))),
                Err(e) => {
                    // Nothing listens or nothing answers: the other base cannot do better.
                    return Err(format!("GET {path}: {e}"));
                }
            }
        }
        Err(format!(
            "answers neither ESP base path ({})",
            answers.join("; ")
        ))
    }

    /// The REST base that answered, under the engine's path prefix.
    pub(super) fn base(&self) -> String {
        let base = self.link.health().base.expect("requests follow a probe");
        format!("{}{base}", self.prefix)
    }

    /// The engine's key in [`crate::engine::deployed::Deployed`].
    pub(super) fn deployed_key(&self) -> String {
        format!("{}@{}", self.name, self.client.authority())
    }

    /// The names of the projects the engine runs (`GET {base}/projects`,
    /// esp-protocol.md §2.2: `project` elements with a `name`), within
    /// `deadline` (a tick for the heartbeat, longer before a deploy).
    pub(super) async fn list_projects(
        &mut self,
        deadline: Duration,
    ) -> Result<Vec<String>, String> {
        let base = self.base();
        let r = self
            .get(&format!("{base}/projects"), deadline)
            .await
            .map_err(|e| format!("GET {base}/projects: {e}"))?;
        if !r.is_success() {
            return Err(format!(
                "GET {base}/projects: {}",
                crate::engine::answer_text(&r)
            ));
        }
        let text = String::from_utf8_lossy(&r.body);
        let opts = roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: crate::limits::XML_NODES_MAX,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(text.trim(), opts)
            .map_err(|e| format!("GET {base}/projects: the answer is not XML: {e}"))?;
        Ok(doc
            .descendants()
            .filter(|n| n.has_tag_name("project"))
            .filter_map(|n| n.attribute("name").map(str::to_string))
            .collect())
    }

    /// The first of our projects the engine does not list, if any.
    pub(super) async fn missing_project(
        &mut self,
        deadline: Duration,
    ) -> Result<Option<String>, String> {
        let listed = self.list_projects(deadline).await?;
        let missing = self
            .projects
            .iter()
            .find(|p| !listed.contains(&p.name))
            .map(|p| p.name.clone());
        self.listed_at = missing.is_none().then(crate::clock::now);
        Ok(missing)
    }

    /// Loads each project the engine does not run in this version (the
    /// table in `deployed`'s docs). Returns whether anything was loaded.
    pub(super) async fn deploy<S: Storage>(&mut self, shared: &Shared<S>) -> Result<bool, String> {
        let base = self.base();
        let listed = self.list_projects(self.settings.deploy_deadline()).await?;
        let key = self.deployed_key();
        let mut loaded = false;
        for p in self.projects.clone() {
            let recorded = shared.deployed.borrow().get(&key, &p.name);
            let mut plan =
                crate::engine::deployed::plan(listed.contains(&p.name), recorded, p.fingerprint);
            if self.force_reload && plan != crate::engine::deployed::Plan::Load {
                log::warn!(
                    "engine '{}': lists project '{}' but does not take its events; loading it again",
                    self.name,
                    p.name
                );
                plan = crate::engine::deployed::Plan::Reload;
            }
            match plan {
                crate::engine::deployed::Plan::Keep => {
                    log::info!(
                        "engine '{}': already runs project '{}' as configured; not reloaded",
                        self.name,
                        p.name
                    );
                    continue;
                }
                crate::engine::deployed::Plan::Adopt => {
                    log::info!(
                        "engine '{}': already runs project '{}', which this state dir has no record of loading; kept as it is (not reloaded)",
                        self.name,
                        p.name
                    );
                    self.record_deployed(shared, &key, &p);
                    continue;
                }
                crate::engine::deployed::Plan::Reload if !self.force_reload => log::warn!(
                    "engine '{}': project '{}' changed in the config since it was loaded; reloading it (its windows start empty)",
                    self.name,
                    p.name
                ),
                _ => {}
            }
            // Marked as loading until its reference data is sent again: a
            // restart in between reloads it (a recorded 0 is no version).
            shared.deployed.borrow_mut().set(&key, &p.name, 0).ok();
            // Publisher connectors were taken out of the XML, so starting
            // the connectors starts only the project's subscribers.
            let path = format!(
                "{base}/projects/{}?overwrite=true&connectors=true&start=true",
                crate::engine::encode::path_segment(&p.name)
            );
            let r = self
                .put_xml(&path, p.xml.as_bytes(), self.settings.deploy_deadline())
                .await;
            match classify(&r) {
                Outcome::Done => {
                    self.status.update(|s| s.deploys += 1);
                    log::info!(
                        "engine '{}': project '{}' deployed ({} bytes{})",
                        self.name,
                        p.name,
                        p.xml.len(),
                        if p.publishers_removed > 0 {
                            format!(
                                ", without its {} publisher connectors",
                                p.publishers_removed
                            )
                        } else {
                            String::new()
                        }
                    );
                    self.loaded.push(p.clone());
                    loaded = true;
                }
                Outcome::Rejected { message, .. } | Outcome::Lost(message) => {
                    return Err(format!("deploying project '{}' refused: {message}", p.name))
                }
                Outcome::Retry(why) => {
                    return Err(format!("deploying project '{}': {why}", p.name))
                }
            }
        }
        self.force_reload = false;
        Ok(loaded)
    }

    pub(super) fn record_deployed<S: Storage>(&self, shared: &Shared<S>, key: &str, p: &Deploy) {
        if let Err(e) = shared
            .deployed
            .borrow_mut()
            .set(key, &p.name, p.fingerprint)
        {
            log::warn!(
                "engine '{}': cannot record the load of project '{}' in {}: {e}; a restart asks the engine again",
                self.name,
                p.name,
                crate::engine::deployed::FILE_NAME
            );
        }
    }

    /// A deploy that did not take or was refused: counted, shown in the
    /// status, logged once per change of cause.
    pub(super) fn deploy_trouble(&mut self, cause: String) {
        self.status.update(|s| {
            s.deploy_failures += 1;
            s.last_error = Some(cause.clone());
        });
        if self.last_cause.as_deref() != Some(cause.as_str()) {
            log::warn!("engine '{}': {cause}", self.name);
            self.last_cause = Some(cause);
        }
    }

    /// The engine lost a project (or never took it): deploy again, after a
    /// backoff when no event was taken since the last deploy.
    pub(super) async fn project_lost(&mut self, why: String) {
        let fresh = self.link.fresh_deploy();
        let next = self.link.step(Happened::Lost, crate::clock::now());
        if fresh {
            self.force_reload = true;
            self.deploy_trouble(format!(
                "the project does not take: right after deploying, {why}; deploying again after a backoff"
            ));
            self.wait(next.wait).await;
        } else {
            log::warn!(
                "engine '{}': {why}; it lost its projects (restarted?), deploying them again",
                self.name
            );
        }
    }

    /// Sends the next request of reference data again (after a load), or
    /// ends the replay when none is left.
    pub(super) async fn replay_step<S: Storage>(&mut self, shared: &Shared<S>) {
        let Some(r) = self.replay else { return };
        let mut payload = Vec::new();
        let mut body = Vec::new();
        let mut target: Option<usize> = None;
        let (mut next, mut count, mut first) = (r.offset, 0u32, None);
        loop {
            let got = shared.reference.borrow().read_at(next, &mut payload);
            let (h, after) = match got {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e) => {
                    log::error!(
                        "engine '{}': reading reference data: {e}; what follows it is not sent again",
                        self.name
                    );
                    break;
                }
            };
            let t = usize::from(h.target);
            let wanted = h.seq < r.below && h.wanted_by(self.id, self.cluster_mask);
            let Some(w) = shared.window(t).filter(|_| wanted) else {
                next = after;
                continue;
            };
            if target.is_some_and(|b| b != t || w.transactional) || body.len() >= self.sizing.max()
            {
                break;
            }
            if target.is_none() {
                body.extend_from_slice(b"<events>");
                if w.transactional {
                    body.extend_from_slice(b"<transaction>");
                }
                target = Some(t);
            }
            let mark = body.len();
            if event_elements(&payload, &w, &mut body).is_err() {
                body.truncate(mark);
            } else {
                count += h.count;
                first.get_or_insert(h.seq);
            }
            next = after;
        }
        let Some(t) = target else {
            self.finish_replay(shared, r.sent);
            return;
        };
        let w = shared.window(t).expect("a replayed record's window exists");
        if w.transactional {
            body.extend_from_slice(b"</transaction>");
        }
        body.extend_from_slice(b"</events>");
        let path = format!("{}{}", self.base(), w.inject_path);
        let answer = self.put_xml(&path, &body, self.settings.timeout).await;
        let done = match classify(&answer) {
            Outcome::Done => {
                self.took();
                self.status
                    .update(|s| s.reference_resent += u64::from(count));
                true
            }
            Outcome::Rejected { status, message } => {
                self.answered();
                self.dead_letter(
                    shared,
                    &w,
                    first.unwrap_or(0),
                    count,
                    status,
                    &message,
                    &body,
                )
                .await
            }
            Outcome::Lost(why) => self.window_lost(&w, why).await,
            Outcome::Retry(why) => {
                self.retry_later(format!("sending reference data to {}: {why}", w.label))
                    .await
            }
        };
        if let (true, Some(r)) = (done, &mut self.replay) {
            r.offset = next;
            r.sent += u64::from(count);
        }
    }

    /// The replay is over: the loads it completes are recorded.
    pub(super) fn finish_replay<S: Storage>(&mut self, shared: &Shared<S>, sent: u64) {
        self.replay = None;
        if sent > 0 {
            log::info!(
                "engine '{}': {sent} reference events sent again before any other",
                self.name
            );
        }
        let key = self.deployed_key();
        for p in std::mem::take(&mut self.loaded) {
            self.record_deployed(shared, &key, &p);
        }
    }
}
