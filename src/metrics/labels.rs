//! The label values of a DNS worker's counter layout, kept so that the next layout (after a
//! reload) takes over the registry handles of every counter whose labels did not change instead
//! of looking them up again: a lookup builds and hashes the label strings, and 10,000 services
//! of 10 endpoints are some 1,100,000 counters.

use std::collections::HashMap;

use crate::config::model::ServiceDef;
use crate::config::policy::Model;

/// The label values a layout's counters were registered with.
#[derive(Default)]
pub(super) struct Labels {
    /// Zone origins, then "none".
    pub(super) zones: Vec<String>,
    /// Region names, in model order ("any" follows them in the counters).
    pub(super) regions: Vec<String>,
    /// Per service, its name, then each pool's name, endpoint count and endpoint names (each
    /// string and count as 4 bytes, little-endian, strings then their bytes), so two services
    /// have the same bytes only when they have the same labels: service `s` is
    /// `services[service_at[s]..service_at[s + 1]]`.
    services: Vec<u8>,
    service_at: Vec<usize>,
}

impl Labels {
    /// Add service `s` of model `m`; its bytes.
    pub(super) fn push_service(&mut self, m: &Model, s: &ServiceDef) -> &[u8] {
        if self.service_at.is_empty() {
            self.service_at.push(0);
        }
        let start = self.services.len();
        let out = &mut self.services;
        let mut put = |text: &[u8], prefixed: bool| {
            if prefixed {
                out.extend_from_slice(&(text.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(text);
        };
        put(s.name.as_bytes(), true);
        for &pi in &s.pools {
            let p = &m.pools[pi];
            put(p.name.as_bytes(), true);
            put(&(p.endpoints.len() as u32).to_le_bytes(), false);
            for e in p.endpoints.iter() {
                put(e.name.as_bytes(), true);
            }
        }
        self.service_at.push(self.services.len());
        &self.services[start..]
    }

    /// Service `s`'s bytes.
    fn service(&self, s: usize) -> Option<&[u8]> {
        let (&a, &b) = (self.service_at.get(s)?, self.service_at.get(s + 1)?);
        Some(&self.services[a..b])
    }

    /// Finds services of these labels by their bytes.
    pub(super) fn finder(&self) -> ServiceFinder<'_> {
        ServiceFinder {
            labels: self,
            by_bytes: None,
        }
    }
}

/// Finds the service with given label bytes among a layout's: at the position asked first (a
/// reload that changed little keeps most services where they were), else through an index
/// built at the first miss.
pub(super) struct ServiceFinder<'a> {
    labels: &'a Labels,
    by_bytes: Option<HashMap<&'a [u8], usize, foldhash::fast::RandomState>>,
}

impl ServiceFinder<'_> {
    /// The position of the service whose labels are `bytes`, trying `at` first.
    pub(super) fn find(&mut self, at: usize, bytes: &[u8]) -> Option<usize> {
        if self.labels.service(at) == Some(bytes) {
            return Some(at);
        }
        let labels = self.labels;
        self.by_bytes
            .get_or_insert_with(|| {
                (0..labels.service_at.len().saturating_sub(1))
                    .filter_map(|s| Some((labels.service(s)?, s)))
                    .collect()
            })
            .get(bytes)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::Layout;

    /// A configuration of `services` services of two pools of two endpoints each, in a zone
    /// written to `dir`; `rename` renames the last service's second endpoint.
    fn snapshot(dir: &std::path::Path, services: usize, rename: bool) -> crate::snapshot::Snapshot {
        std::fs::write(
            dir.join("z.zone"),
            "$ORIGIN z.test.\n@ 300 SOA ns h 1 7200 3600 1209600 300\n@ 300 NS ns\nns 300 A 192.0.2.53\n",
        )
        .unwrap();
        let mut text = String::from(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\n[[zone]]\norigin = \"z.test.\"\nfile = \"z.zone\"\n\
             [[region]]\nname = \"eu\"\nlocation = [50.1, 8.7]\n\
             [[region]]\nname = \"us\"\nlocation = [39.0, -77.5]\n",
        );
        for p in 0..2 * services {
            text += &format!("[[pool]]\nname = \"p{p}\"\nregion = \"eu\"\n");
            for e in 0..2 {
                let name = if rename && p == 2 * services - 1 && e == 1 {
                    "renamed".to_string()
                } else {
                    format!("e{p}-{e}")
                };
                text +=
                    &format!("[[pool.endpoint]]\nname = \"{name}\"\naddress = \"10.0.{p}.{e}\"\n");
            }
        }
        for s in 0..services {
            text += &format!(
                "[[service]]\nname = \"s{s}.z.test.\"\npolicy = \"failover\"\npools = [\"p{}\", \"p{}\"]\n",
                2 * s,
                2 * s + 1
            );
        }
        let config = crate::config::Config::parse(&dir.join("m.toml"), &text).unwrap();
        crate::snapshot::assemble(&config).unwrap()
    }

    #[test]
    fn a_new_layout_takes_over_the_counters_of_the_same_labels() {
        let dir = tempfile::tempdir().unwrap();
        // Per zone (z.test. and "none"): every query type (and "other") × RCODE × transport.
        let queries = 2 * super::super::N_QTYPES * super::super::RCODES.len() * 2;
        // Per service: 3 regions (eu, us, any), 4 endpoints, 4 kinds of degraded answers.
        let per_service = 3 + 4 + 4;
        let first = Layout::new(&snapshot(dir.path(), 3, false), None);
        assert_eq!(first.registered, queries + 3 * per_service);
        assert_eq!(first.counters(), first.registered);
        // The same configuration again (a reload of an unchanged file): nothing is looked up.
        let same = Layout::new(&snapshot(dir.path(), 3, false), Some(&first));
        assert_eq!((same.registered, same.counters()), (0, first.counters()));
        // An endpoint renamed: its service's counters are looked up again, the others kept.
        let mut renamed = Layout::new(&snapshot(dir.path(), 3, true), Some(&same));
        assert_eq!(renamed.registered, per_service);
        // Counts land in the series of their labels, taken over or not: service s0's second
        // endpoint (kept) and service s2's last, renamed, endpoint (registered).
        renamed.endpoints.n[1] += 2;
        renamed.endpoints.n[2 * 4 + 3] += 5;
        renamed.flush();
        let text = crate::metrics::render();
        let sample = |labels: &str| {
            let line = format!("meridian_policy_endpoint_answers_total{{{labels}}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(line.as_str()))
                .unwrap_or_else(|| panic!("no {line} in the exposition"))
                .to_string()
        };
        assert_eq!(
            sample("service=\"s0.z.test.\",pool=\"p0\",endpoint=\"e0-1\""),
            "2"
        );
        assert_eq!(
            sample("service=\"s2.z.test.\",pool=\"p5\",endpoint=\"renamed\""),
            "5"
        );
        // One service more, in front: every service moves, and is found by its labels all the
        // same; only the new one is looked up.
        let more = Layout::new(&snapshot(dir.path(), 4, false), Some(&first));
        assert_eq!(more.registered, per_service);
        assert_eq!(more.counters(), queries + 4 * per_service);
    }
}
