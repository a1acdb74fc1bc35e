//! What a verifier accepts: the trust profile, its roots of trust, and the TDX policy.
//!
//! dcap-qvl rejects only `Revoked` TCBs; which statuses and advisories are good enough is
//! ours to say, and it is said here, explicitly, with a strict default.

use serde::{Deserialize, Serialize};

use crate::error::TeeError;
use crate::nvidia::Jwks;
use crate::testroot::TestRootOfTrust;

/// Which roots of trust a node accepts. `Production` (the default everywhere) trusts only
/// Intel's and NVIDIA's real roots; `Devnet` additionally trusts the public, well-known
/// hallmark test root, whose private keys anyone can derive — never use it for real value.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    #[default]
    Production,
    Devnet,
}

impl std::str::FromStr for Profile {
    type Err = TeeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "production" => Ok(Self::Production),
            "devnet" => Ok(Self::Devnet),
            other => Err(TeeError::Policy(format!(
                "unknown profile {other:?} (expected production or devnet)"
            ))),
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Production => "production",
            Self::Devnet => "devnet",
        })
    }
}

/// One DCAP root CA certificate a quote chain may end in.
#[derive(Debug, Clone)]
pub struct TrustRoot {
    /// Shown in verdicts: which root a chain was verified against.
    pub name: String,
    /// The root CA certificate, DER; `None` means Intel's production root as shipped in
    /// dcap-qvl (`QuoteVerifier::new_prod`).
    pub der: Option<Vec<u8>>,
}

impl TrustRoot {
    /// The dcap-qvl verifier anchored at this root. Debug TDs pass dcap-qvl so that our own
    /// policy check can reject them under its own name.
    pub fn quote_verifier(&self) -> dcap_qvl::verify::QuoteVerifier {
        let verifier = match &self.der {
            None => dcap_qvl::verify::QuoteVerifier::new_prod(),
            Some(der) => dcap_qvl::verify::QuoteVerifier::new(der.clone()),
        };
        verifier.allow_debug(true)
    }
}

/// The DCAP roots a verifier accepts, tried in order.
#[derive(Debug, Clone)]
pub struct TrustRoots {
    pub roots: Vec<TrustRoot>,
}

/// The name under which Intel's SGX/TDX root CA appears in verdicts.
pub const INTEL_ROOT_NAME: &str = "intel-sgx-root-ca";
/// The name under which the hallmark devnet test root appears in verdicts.
pub const DEVNET_ROOT_NAME: &str = "hallmark-devnet-test-root";

impl TrustRoots {
    /// Intel's production root only.
    pub fn intel() -> Self {
        Self {
            roots: vec![TrustRoot {
                name: INTEL_ROOT_NAME.into(),
                der: None,
            }],
        }
    }

    /// The roots a profile trusts: Intel's always; the devnet test root only in `Devnet`.
    pub fn for_profile(profile: Profile) -> Result<Self, TeeError> {
        Ok(ProfileTrust::new(profile, Jwks { keys: Vec::new() })?.roots)
    }

    /// What the devnet profile trusts: Intel's root and `test_root`.
    pub fn devnet(test_root: &TestRootOfTrust) -> Self {
        let mut roots = Self::intel();
        roots.roots.push(TrustRoot {
            name: DEVNET_ROOT_NAME.into(),
            der: Some(test_root.root_ca_der().to_vec()),
        });
        roots
    }

    /// Exactly one custom root (tests that build their own chain).
    pub fn single(name: &str, der: Vec<u8>) -> Self {
        Self {
            roots: vec![TrustRoot {
                name: name.into(),
                der: Some(der),
            }],
        }
    }
}

/// Everything a node trusts under a profile: quote roots and NVIDIA keys, and in devnet the
/// test root itself (whose keys mint simulated evidence and a node's own simulated quote).
pub struct ProfileTrust {
    pub roots: TrustRoots,
    pub jwks: Jwks,
    pub test_root: Option<TestRootOfTrust>,
}

impl ProfileTrust {
    /// The trust of `profile` with `jwks` as the configured NVIDIA key set; devnet adds the
    /// test root and its NVIDIA key.
    pub fn new(profile: Profile, mut jwks: Jwks) -> Result<Self, TeeError> {
        match profile {
            Profile::Production => Ok(Self {
                roots: TrustRoots::intel(),
                jwks,
                test_root: None,
            }),
            Profile::Devnet => {
                let root = TestRootOfTrust::devnet()?;
                let test: Jwks = serde_json::from_value(root.nvidia_jwks())
                    .map_err(|e| TeeError::Jwks(e.to_string()))?;
                jwks.keys.extend(test.keys);
                Ok(Self {
                    roots: TrustRoots::devnet(&root),
                    jwks,
                    test_root: Some(root),
                })
            }
        }
    }
}

/// TCB statuses as Intel names them (and dcap-qvl prints them).
pub const TCB_STATUSES: &[&str] = &[
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
    "Revoked",
];

/// What a TDX/SGX quote must satisfy beyond a valid signature chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TdxPolicy {
    /// TCB statuses accepted. Default: `UpToDate` only.
    pub allowed_tcb_statuses: Vec<String>,
    /// Intel security advisories tolerated (e.g. `INTEL-SA-00615`). Default: none.
    pub allowed_advisories: Vec<String>,
    /// Accept a TD or enclave in debug mode. Default false; never true in production.
    pub allow_debug: bool,
    /// If non-empty, MRTD (hex, 48 bytes) must be one of these.
    pub mr_td: Vec<String>,
    /// If set, RTMR0 (hex, 48 bytes) must equal this.
    pub rtmr0: Option<String>,
    /// If set, RTMR1 must equal this.
    pub rtmr1: Option<String>,
    /// If set, RTMR2 must equal this.
    pub rtmr2: Option<String>,
    /// If set, RTMR3 must equal this.
    pub rtmr3: Option<String>,
    /// Collateral older than this (seconds since its TCB info was issued) is refused even if
    /// Intel still lists it as current. Default 30 days.
    pub max_collateral_age_secs: u64,
}

impl Default for TdxPolicy {
    fn default() -> Self {
        Self {
            allowed_tcb_statuses: vec!["UpToDate".into()],
            allowed_advisories: Vec::new(),
            allow_debug: false,
            mr_td: Vec::new(),
            rtmr0: None,
            rtmr1: None,
            rtmr2: None,
            rtmr3: None,
            max_collateral_age_secs: 30 * 24 * 3600,
        }
    }
}

impl TdxPolicy {
    /// Reads a policy from TOML (or JSON when the text starts with `{`); unknown keys and
    /// unknown TCB statuses are errors, so a typo cannot silently loosen the policy.
    pub fn parse(text: &str) -> Result<Self, TeeError> {
        let policy: Self = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| TeeError::Policy(e.to_string()))?
        } else {
            toml::from_str(text).map_err(|e| TeeError::Policy(e.to_string()))?
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Checks that every status is a real TCB status and every pin is 48-byte hex.
    pub fn validate(&self) -> Result<(), TeeError> {
        for s in &self.allowed_tcb_statuses {
            if !TCB_STATUSES.contains(&s.as_str()) {
                return Err(TeeError::Policy(format!("unknown TCB status {s:?}")));
            }
            if s == "Revoked" {
                return Err(TeeError::Policy("Revoked can never be allowed".into()));
            }
        }
        let pins = self
            .mr_td
            .iter()
            .chain(self.rtmr_pins().into_iter().flatten());
        for pin in pins {
            match hex::decode(pin) {
                Ok(b) if b.len() == 48 => {}
                _ => {
                    return Err(TeeError::Policy(format!(
                        "measurement pin {pin:?} is not 48 bytes of hex"
                    )))
                }
            }
        }
        Ok(())
    }
}

impl TdxPolicy {
    /// RTMR0..3 pins in register order.
    pub fn rtmr_pins(&self) -> [Option<&String>; 4] {
        [
            self.rtmr0.as_ref(),
            self.rtmr1.as_ref(),
            self.rtmr2.as_ref(),
            self.rtmr3.as_ref(),
        ]
    }
}
