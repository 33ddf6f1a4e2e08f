//! Estimated monthly cost of claims, from a price table per storage class or tier, so an operator
//! sees what a testnet's storage costs before applying.
//!
//! Resolution of a class's price, first match wins:
//! 1. the class name itself is a key of the table (`"fast-eu" = 0.2`);
//! 2. the last `-`-separated part of the class name is a key (`europe-west1-ssd` → `ssd`), the
//!    naming convention of the region module;
//! 3. the class as the cluster holds it: its [`LABEL_TIER`] label, or the tier whose preset made its
//!    provisioner and `type` parameter (`pd-ssd`, `gp3` → `ssd`; `pd-standard`, `st1` → `standard`).
//!
//! Otherwise the class has no price and the caller reports it (no guess: a wrong number is worse
//! than none when budgeting).

use std::collections::BTreeMap;

use crate::storage_class::{infer_preset, StorageClassInfo};
use crate::validate::Quantity;

/// Label naming a StorageClass's price tier when neither its name nor its provisioner says it
/// (e.g. `local-path` classes): `testnet.io/tier: ssd`.
pub const LABEL_TIER: &str = "testnet.io/tier";

/// Default USD per GiB-month of the `ssd` tier (typical of GCP pd-ssd / AWS gp3 list prices).
pub const DEFAULT_SSD_PRICE: f64 = 0.17;
/// Default USD per GiB-month of the `standard` tier (pd-standard / st1).
pub const DEFAULT_STANDARD_PRICE: f64 = 0.04;

const GIB: f64 = (1u64 << 30) as f64;

/// USD per GiB-month, keyed by storage class name or tier name.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, f64>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::with_overrides(BTreeMap::new())
    }
}

/// How a price was found, for messages and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// USD per GiB-month.
    pub usd_per_gib_month: f64,
    /// The table key that matched (a class name or a tier).
    pub key: String,
    /// Which rule matched: `class name`, `name suffix`, `tier label`, `provisioner preset`.
    pub rule: &'static str,
}

/// Why a price table entry was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "price {value} for {key:?} is not a price: use a finite number of USD per GiB-month, 0 or more"
)]
pub struct PriceError {
    /// The entry's key.
    pub key: String,
    /// The refused value.
    pub value: f64,
}

impl PriceTable {
    /// The defaults (`ssd`, `standard`) with the user's entries added over them.
    pub fn with_overrides(user: BTreeMap<String, f64>) -> Self {
        let mut prices = BTreeMap::from([
            ("ssd".to_string(), DEFAULT_SSD_PRICE),
            ("standard".to_string(), DEFAULT_STANDARD_PRICE),
        ]);
        prices.extend(user);
        Self { prices }
    }

    /// Checks one user entry: negative, NaN or infinite prices are refused.
    pub fn check_entry(key: &str, value: f64) -> Result<(), PriceError> {
        if value.is_finite() && value >= 0.0 {
            Ok(())
        } else {
            Err(PriceError {
                key: key.to_string(),
                value,
            })
        }
    }

    /// The keys, for messages listing what is priced.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.prices.keys().map(String::as_str)
    }

    fn entry(&self, key: &str, rule: &'static str) -> Option<Price> {
        self.prices.get(key).map(|p| Price {
            usd_per_gib_month: *p,
            key: key.to_string(),
            rule,
        })
    }

    /// Rules 1 and 2: the price known from the class name alone (no cluster needed, so it is
    /// known at plan time even for a class created in the same apply).
    pub fn by_name(&self, class: &str) -> Option<Price> {
        self.entry(class, "class name").or_else(|| {
            let (_, suffix) = class.rsplit_once('-')?;
            self.entry(suffix, "name suffix")
        })
    }

    /// Rules 1 to 3 for a class the cluster holds.
    pub fn by_class(&self, class: &StorageClassInfo) -> Option<Price> {
        self.by_name(&class.spec.name)
            .or_else(|| {
                let tier = class.spec.labels.get(LABEL_TIER)?;
                self.entry(tier, "tier label")
            })
            .or_else(|| {
                let (tier, _) = infer_preset(&class.spec.provisioner, &class.spec.parameters)?;
                self.entry(tier.as_str(), "provisioner preset")
            })
    }
}

/// A quantity in GiB (2^30 bytes), the unit cloud prices use: `10Gi` = 10, `500Mi` = 0.48828125,
/// `1G` = 0.9313….
pub fn gib(q: Quantity) -> f64 {
    q.bytes as f64 / GIB
}

/// Monthly cost in USD of `storage` at `price`, rounded to a millionth of a dollar so the figure
/// carries no binary floating-point noise (10 GiB at 0.17 is 1.7, not 1.7000000000000002).
pub fn monthly_cost(storage: Quantity, usd_per_gib_month: f64) -> f64 {
    (gib(storage) * usd_per_gib_month * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage_class::{tier_preset, Cloud, StorageClassSpec, Tier};
    use crate::validate::parse_quantity;

    fn q(s: &str) -> Quantity {
        parse_quantity(s).unwrap()
    }

    #[test]
    fn quantities_in_gib() {
        assert_eq!(gib(q("10Gi")), 10.0);
        assert_eq!(gib(q("500Mi")), 0.48828125);
        assert!((gib(q("1G")) - 0.931_322_574_615_478_5).abs() < 1e-15);
        assert_eq!(gib(q("1Ti")), 1024.0);
    }

    #[test]
    fn cost_is_rounded_to_micro_dollars() {
        assert_eq!(monthly_cost(q("10Gi"), 0.17), 1.7);
        assert_eq!(monthly_cost(q("500Mi"), 0.04), 0.019531);
        assert_eq!(monthly_cost(q("1Ti"), 0.04), 40.96);
        assert_eq!(monthly_cost(q("0"), 0.17), 0.0);
    }

    #[test]
    fn defaults_and_overrides() {
        let t = PriceTable::default();
        assert_eq!(t.by_name("ssd").unwrap().usd_per_gib_month, 0.17);
        let t = PriceTable::with_overrides(BTreeMap::from([
            ("ssd".to_string(), 0.2),
            ("archive-eu".to_string(), 0.01),
            ("nvme".to_string(), 0.3),
        ]));
        let p = t.by_name("europe-west1-ssd").unwrap();
        assert_eq!(
            (p.usd_per_gib_month, p.key.as_str(), p.rule),
            (0.2, "ssd", "name suffix")
        );
        assert_eq!(
            t.by_name("europe-west1-standard")
                .unwrap()
                .usd_per_gib_month,
            0.04
        );
        // The exact class name wins over its suffix.
        let p = t.by_name("archive-eu").unwrap();
        assert_eq!((p.usd_per_gib_month, p.rule), (0.01, "class name"));
        assert_eq!(t.by_name("node-nvme").unwrap().usd_per_gib_month, 0.3);
        assert!(t.by_name("fast").is_none());
        assert!(t.by_name("ssd-fast").is_none());
    }

    #[test]
    fn cluster_class_by_label_then_preset() {
        let t = PriceTable::default();
        let info = |spec: StorageClassSpec| StorageClassInfo {
            spec,
            uid: "u".into(),
            resource_version: "1".into(),
        };
        let mut labelled = StorageClassSpec::new("local", "rancher.io/local-path");
        labelled.labels.insert(LABEL_TIER.into(), "standard".into());
        let p = t.by_class(&info(labelled)).unwrap();
        assert_eq!((p.usd_per_gib_month, p.rule), (0.04, "tier label"));
        for (cloud, tier, price) in [
            (Cloud::Gcp, Tier::Ssd, 0.17),
            (Cloud::Aws, Tier::Ssd, 0.17),
            (Cloud::Gcp, Tier::Standard, 0.04),
            (Cloud::Aws, Tier::Standard, 0.04),
        ] {
            let (prov, params) = tier_preset(cloud, tier);
            let mut spec = StorageClassSpec::new("fast", prov);
            spec.parameters = params;
            let p = t.by_class(&info(spec)).unwrap();
            assert_eq!((p.usd_per_gib_month, p.rule), (price, "provisioner preset"));
        }
        assert!(t
            .by_class(&info(StorageClassSpec::new("fast", "example.com/none")))
            .is_none());
    }

    #[test]
    fn bad_prices_refused() {
        assert!(PriceTable::check_entry("ssd", 0.0).is_ok());
        for bad in [-0.01, f64::NAN, f64::INFINITY] {
            let e = PriceTable::check_entry("ssd", bad).unwrap_err();
            assert!(e.to_string().contains("\"ssd\""), "{e}");
        }
    }
}
