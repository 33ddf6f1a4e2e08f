//! Ctrl-C during a provider Job (snapshot or restore) on the real node, the same way for both:
//! `terraform apply` starts in the background; once the Job exists the store is stopped
//! (SIGSTOP), so the Job cannot finish before the interrupt whatever the timing; once its pod
//! runs, Terraform gets SIGINT. The store is resumed by the test when the clean-up needs it, and
//! in any case when the guard is dropped, so a failing test never leaves it stopped.

use std::cell::Cell;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use crate::node::wait_for;
use crate::servers::KubeApi;
use crate::Workdir;

/// Sends `signal` (e.g. `-STOP`, `-CONT`, `-INT`) to process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill {signal} {pid}");
}

/// Jobs and their pods left in `ns`.
pub fn job_leftovers(api: &KubeApi, ns: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (what, path) in [
        ("job", format!("/apis/batch/v1/namespaces/{ns}/jobs")),
        (
            "pod",
            format!("/api/v1/namespaces/{ns}/pods?labelSelector=job-name"),
        ),
    ] {
        let list = api.get(&path).expect("list");
        for i in list["items"].as_array().into_iter().flatten() {
            out.push(format!("{what} {}", i["metadata"]["name"]));
        }
    }
    out
}

/// A store process stopped with SIGSTOP; resumed once, by [`StoppedStore::resume`] or on drop.
pub struct StoppedStore {
    pid: u32,
    resumed: Cell<bool>,
}

impl StoppedStore {
    pub fn stop(pid: u32) -> StoppedStore {
        signal(pid, "-STOP");
        StoppedStore {
            pid,
            resumed: Cell::new(false),
        }
    }

    pub fn resume(&self) {
        if !self.resumed.replace(true) {
            signal(self.pid, "-CONT");
        }
    }
}

impl Drop for StoppedStore {
    fn drop(&mut self) {
        self.resume();
    }
}

/// An apply interrupted while its Job's pod was running, the store stopped.
pub struct InterruptedApply {
    pub tf: Child,
    pub job: String,
    pub pod: String,
    pub store: StoppedStore,
}

impl InterruptedApply {
    /// Starts `terraform apply` in `wd` (output in `apply.log`), waits for the Job in `ns`
    /// (`what` names it in timeouts), stops the store `store_pid`, waits for the Job's pod to run
    /// and sends Terraform SIGINT.
    pub fn start(wd: &Workdir, api: &KubeApi, ns: &str, what: &str, store_pid: u32) -> Self {
        let out = std::fs::File::create(wd.path().join("apply.log")).expect("log");
        let tf = wd
            .command(&["apply", "-auto-approve", "-input=false", "-no-color"])
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start terraform apply");
        let jobs = format!("/apis/batch/v1/namespaces/{ns}/jobs");
        let job = wait_for(
            &format!("the {what} Job exists"),
            Duration::from_secs(120),
            || {
                let l = api.get(&jobs).ok_or("no list")?;
                l["items"][0]["metadata"]["name"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "none yet".to_string())
            },
        );
        let store = StoppedStore::stop(store_pid);
        let pod = wait_for("the Job's pod runs", Duration::from_secs(120), || {
            let l = api
                .get(&format!(
                    "/api/v1/namespaces/{ns}/pods?labelSelector=job-name%3D{job}"
                ))
                .ok_or("no list")?;
            let p = &l["items"][0];
            match p["status"]["phase"].as_str() {
                Some("Running") => Ok(p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()),
                // It cannot show the interrupt: fail clearly (the guard resumes the store).
                Some("Succeeded" | "Failed") => panic!(
                    "the Job's pod ended before it was seen running: {}",
                    p["status"]
                ),
                _ => Err(p["status"].to_string()),
            }
        });
        signal(tf.id(), "-INT");
        InterruptedApply {
            tf,
            job,
            pod,
            store,
        }
    }

    /// Waits until the Job is gone or being deleted.
    pub fn wait_job_deleting(&self, api: &KubeApi, ns: &str) {
        let path = format!("/apis/batch/v1/namespaces/{ns}/jobs/{}", self.job);
        wait_for(
            "the Job is being deleted",
            Duration::from_secs(60),
            || match api.get(&path) {
                None => Ok(()),
                Some(j) if !j["metadata"]["deletionTimestamp"].is_null() => Ok(()),
                Some(j) => Err(j["status"].to_string()),
            },
        );
    }

    /// Resumes the store, waits for Terraform to exit and returns its status and output.
    pub fn finish(mut self, wd: &Workdir) -> (ExitStatus, String) {
        self.store.resume();
        let status = wait_for("terraform exits", Duration::from_secs(240), || {
            self.tf
                .try_wait()
                .expect("wait terraform")
                .ok_or_else(|| "running".to_string())
        });
        let log = std::fs::read_to_string(wd.path().join("apply.log")).unwrap_or_default();
        (status, log)
    }
}

/// The pod log of a Job's pod, once it contains `needle` (a 404 means the pod is gone: fail).
pub fn wait_pod_log(api: &KubeApi, ns: &str, pod: &str, needle: &str) {
    wait_for(
        &format!("the pod logs {needle:?}"),
        Duration::from_secs(90),
        || {
            let (code, body) = api.send(
                "GET",
                &format!("/api/v1/namespaces/{ns}/pods/{pod}/log"),
                "application/json",
                None,
            );
            if code == 200 && body.contains(needle) {
                Ok(())
            } else if code == 404 {
                panic!("the Job's pod went away before logging {needle:?}");
            } else {
                Err(format!("{code} {body}"))
            }
        },
    );
}
