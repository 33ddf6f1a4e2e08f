//! ConfigMaps as compare-and-swap cells: read with the `resourceVersion` and the server's time,
//! write only over the version read (or create only when absent). The network-state document
//! (crate `netstate`) is built on these.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::Api;

use crate::claim::{LABEL_MANAGED_BY, MANAGED_BY};
use crate::connect::Cluster;
use crate::error::{ClusterError, ObjectRef};
use crate::server_time::ServerTime;

/// The most bytes a ConfigMap's data may hold (the API server's `MaxSecretSize`, 1 MiB).
pub const CONFIG_MAP_MAX_BYTES: usize = 1024 * 1024;

/// A ConfigMap's `data` and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMap {
    /// `data`.
    pub data: BTreeMap<String, String>,
    /// `metadata.resourceVersion`: a write must carry it.
    pub resource_version: String,
}

impl Cluster {
    fn config_maps(&self, namespace: &str) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Reads a ConfigMap (`None` when absent) and the server's time.
    pub async fn get_config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(Option<StoredMap>, ServerTime), ClusterError> {
        let object = ObjectRef::namespaced("ConfigMap", namespace, name);
        let (cm, time) = self.get_timed::<ConfigMap>(namespace, name, object).await?;
        Ok((
            cm.map(|c| StoredMap {
                data: c.data.unwrap_or_default(),
                resource_version: c.metadata.resource_version.unwrap_or_default(),
            }),
            time,
        ))
    }

    /// Writes `data` over the version `expected` (`None`: create, failing if it exists). A write
    /// that lost a race is [`ClusterError::Conflict`], whichever way it lost. Returns the new
    /// resourceVersion.
    pub async fn put_config_map(
        &self,
        namespace: &str,
        name: &str,
        labels: BTreeMap<String, String>,
        data: BTreeMap<String, String>,
        expected: Option<&str>,
    ) -> Result<String, ClusterError> {
        let object = ObjectRef::namespaced("ConfigMap", namespace, name);
        let mut labels = labels;
        labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                labels: Some(labels),
                resource_version: expected.map(str::to_string),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        };
        let api = self.config_maps(namespace);
        let written = match expected {
            None => api.create(&PostParams::default(), &cm).await.map_err(|e| {
                match self.err(e, "create", object.clone()) {
                    ClusterError::AlreadyExists { object } => ClusterError::Conflict {
                        object,
                        message: "created by someone else meanwhile".into(),
                    },
                    other => other,
                }
            })?,
            Some(_) => api
                .replace(name, &PostParams::default(), &cm)
                .await
                .map_err(|e| match self.err(e, "update", object.clone()) {
                    ClusterError::NotFound { object } => ClusterError::Conflict {
                        object,
                        message: "deleted by someone else meanwhile".into(),
                    },
                    other => other,
                })?,
        };
        Ok(written.metadata.resource_version.unwrap_or_default())
    }

    /// Deletes a ConfigMap; absent is fine.
    pub async fn delete_config_map(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        let object = ObjectRef::namespaced("ConfigMap", namespace, name);
        match self
            .config_maps(namespace)
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match self.err(e, "delete", object) {
                ClusterError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}
