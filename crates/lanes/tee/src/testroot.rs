//! A synthetic, complete root of trust for tests and devnet.
//!
//! Builds what Intel and NVIDIA would hand a verifier — a root CA, a PCK platform CA and PCK
//! leaf carrying the SGX extension, a TCB signing certificate, signed TCB info and QE identity,
//! both CRLs, a QE report signed by the PCK key, a TD quote v4 signed by the attestation key
//! with chosen report data, and an ES384 NVIDIA signing key with its JWKS and x5c — so that the
//! **production** verifier (dcap-qvl's `QuoteVerifier::new(root_ca_der)`, our EAT verifier)
//! accepts it when told to trust this root.
//!
//! Every key derives from a seed with SHA-256 and every signature is RFC 6979 deterministic, so
//! the same seed yields the same chain byte for byte. [`TestRootOfTrust::devnet`] uses a fixed,
//! published seed: anyone can mint evidence under it, which is why only the `devnet` profile
//! trusts it.

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose,
    PublicKeyData, SerialNumber, SignatureAlgorithm,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::TeeError;
// The synthetic tokens carry the real issuer, so the issuer check is the production check.
use crate::nvidia::NRAS_ISSUER;

/// The published seed of the devnet root of trust. Not a secret, by design.
pub const DEVNET_SEED: &str = "hallmark devnet test root of trust v1 -- PUBLIC, NOT SECURE";

/// FMSPC the synthetic platform reports.
pub const TEST_FMSPC: [u8; 6] = [0x48, 0x4d, 0x00, 0x00, 0x00, 0x01];
/// MRSIGNER of the synthetic quoting enclave.
pub const TEST_QE_MRSIGNER: [u8; 32] = [0x5a; 32];
/// The `kid` of the synthetic NVIDIA attestation signing key.
pub const TEST_NVIDIA_KID: &str = "hallmark-test-nras-es384-1";

const CPU_SVN_CURRENT: [u8; 16] = [3; 16];
const CPU_SVN_STALE: [u8; 16] = [2; 16];
const PCE_SVN: u16 = 11;
const QE_ISV_SVN: u16 = 4;
const TDX_MODULE_ISVSVN: u8 = 4;
const TDX_MODULE_MAJOR: u8 = 1;
/// Validity of every synthetic certificate: wide enough for any devnet run.
const CERT_NOT_BEFORE: (i32, u8, u8) = (2024, 1, 1);
const CERT_NOT_AFTER: (i32, u8, u8) = (2049, 12, 31);

/// A P-256 key usable both for raw `r‖s` DCAP signatures and as an rcgen certificate signer.
struct P256Key {
    sk: p256::ecdsa::SigningKey,
    public_sec1: Vec<u8>,
}

impl P256Key {
    fn derive(seed: &[u8], label: &str) -> Self {
        let sk = derive_scalar(seed, label, 32, |b| {
            p256::ecdsa::SigningKey::from_slice(b).ok()
        });
        let public_sec1 = sk.verifying_key().to_sec1_bytes().to_vec();
        Self { sk, public_sec1 }
    }

    /// The raw 64-byte `r‖s` signature DCAP structures carry.
    fn sign_raw(&self, msg: &[u8]) -> [u8; 64] {
        let sig: p256::ecdsa::Signature = self.sk.sign(msg);
        let mut out = [0u8; 64];
        out.copy_from_slice(&sig.to_bytes());
        out
    }

    /// The uncompressed point without its 0x04 prefix, as quotes carry attestation keys.
    fn public_xy(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(&self.public_sec1[1..65]);
        out
    }
}

impl PublicKeyData for P256Key {
    fn der_bytes(&self) -> &[u8] {
        &self.public_sec1
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for P256Key {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let sig: p256::ecdsa::Signature = self.sk.sign(msg);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// A P-384 key: the synthetic NVIDIA attestation service's ES384 signer.
struct P384Key {
    sk: p384::ecdsa::SigningKey,
    public_sec1: Vec<u8>,
}

impl P384Key {
    fn derive(seed: &[u8], label: &str) -> Self {
        let sk = derive_scalar(seed, label, 48, |b| {
            p384::ecdsa::SigningKey::from_slice(b).ok()
        });
        let public_sec1 = sk.verifying_key().to_sec1_bytes().to_vec();
        Self { sk, public_sec1 }
    }
}

impl PublicKeyData for P384Key {
    fn der_bytes(&self) -> &[u8] {
        &self.public_sec1
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P384_SHA384
    }
}

impl rcgen::SigningKey for P384Key {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        use p384::ecdsa::signature::Signer as _;
        let sig: p384::ecdsa::Signature = self.sk.sign(msg);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// `len` bytes of SHA-256(seed ‖ label ‖ attempt ‖ block) until they make a valid scalar
/// (all but certainly on the first attempt).
fn derive_scalar<K>(
    seed: &[u8],
    label: &str,
    len: usize,
    mut make: impl FnMut(&[u8]) -> Option<K>,
) -> K {
    let mut attempt = 0u32;
    loop {
        let mut bytes = Vec::with_capacity(len + 32);
        let mut block = 0u32;
        while bytes.len() < len {
            let mut h = Sha256::new();
            h.update(seed);
            h.update(label.as_bytes());
            h.update(attempt.to_be_bytes());
            h.update(block.to_be_bytes());
            bytes.extend_from_slice(&h.finalize());
            block += 1;
        }
        bytes.truncate(len);
        if let Some(k) = make(&bytes) {
            return k;
        }
        attempt += 1;
    }
}

fn tr(e: impl std::fmt::Display) -> TeeError {
    TeeError::TestRoot(e.to_string())
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d.push(
        DnType::OrganizationName,
        "hallmark TEST root of trust (not Intel, not NVIDIA)",
    );
    d.push(DnType::CountryName, "ZZ");
    d
}

fn params(cn: &str, serial: u64, is_ca: IsCa, usages: Vec<KeyUsagePurpose>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
    p.not_before = rcgen::date_time_ymd(CERT_NOT_BEFORE.0, CERT_NOT_BEFORE.1, CERT_NOT_BEFORE.2);
    p.not_after = rcgen::date_time_ymd(CERT_NOT_AFTER.0, CERT_NOT_AFTER.1, CERT_NOT_AFTER.2);
    p.is_ca = is_ca;
    p.key_usages = usages;
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    p
}

/// Which TCB level the synthetic platform sits at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlatformTcb {
    /// At the newest level: `UpToDate`.
    #[default]
    Current,
    /// One level behind: `OutOfDate` with advisory `INTEL-SA-00837`.
    Stale,
}

/// What a synthetic TD quote should say.
#[derive(Debug, Clone)]
pub struct TdQuoteSpec {
    pub report_data: [u8; 64],
    /// Set the TD DEBUG attribute.
    pub debug: bool,
    pub mr_td: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub tcb: PlatformTcb,
}

impl TdQuoteSpec {
    /// A production-like TD (debug off, SEPT_VE_DISABLE on, current TCB) with this report data.
    pub fn new(report_data: [u8; 64]) -> Self {
        Self {
            report_data,
            debug: false,
            mr_td: [0x11; 48],
            rtmr: [[0x21; 48], [0x22; 48], [0x23; 48], [0x24; 48]],
            tcb: PlatformTcb::Current,
        }
    }
}

/// Claims of one synthetic GPU in an NVIDIA EAT.
#[derive(Debug, Clone)]
pub struct GpuClaims {
    pub hwmodel: String,
    pub measres: String,
    pub secboot: bool,
    pub dbgstat: String,
}

impl GpuClaims {
    /// A healthy H100 (`GH100`): measurements match, secure boot on, debug disabled.
    pub fn healthy_h100() -> Self {
        Self {
            hwmodel: "GH100".into(),
            measres: "success".into(),
            secboot: true,
            dbgstat: "disabled".into(),
        }
    }
}

/// The complete synthetic chain. Build once, mint as much evidence as needed.
pub struct TestRootOfTrust {
    root_key: P256Key,
    root_params: CertificateParams,
    root_der: Vec<u8>,
    root_pem: String,
    pck_ca_key: P256Key,
    pck_ca_params: CertificateParams,
    pck_ca_pem: String,
    tcb_signer_key: P256Key,
    tcb_signer_pem: String,
    pck_leaf_key: P256Key,
    /// PCK leaf certificates (PEM) at the current and the stale TCB level.
    pck_leaf_current_pem: String,
    pck_leaf_stale_pem: String,
    attestation_key: P256Key,
    nvidia_key: P384Key,
    nvidia_x5c: Vec<Vec<u8>>,
}

impl std::fmt::Debug for TestRootOfTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRootOfTrust")
            .field("root_sha256", &hex::encode(Sha256::digest(&self.root_der)))
            .finish_non_exhaustive()
    }
}

impl TestRootOfTrust {
    /// The devnet root: derived from the published [`DEVNET_SEED`].
    pub fn devnet() -> Result<Self, TeeError> {
        Self::from_seed(DEVNET_SEED.as_bytes())
    }

    /// A root of trust derived from `seed` (tests use their own seeds to get unrelated roots).
    pub fn from_seed(seed: &[u8]) -> Result<Self, TeeError> {
        let root_key = P256Key::derive(seed, "intel/root");
        let root_params = params(
            "Hallmark Test SGX Root CA",
            1,
            IsCa::Ca(BasicConstraints::Unconstrained),
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
        );
        let mut root_self = root_params.clone();
        root_self.use_authority_key_identifier_extension = false;
        let root_cert = root_self.self_signed(&root_key).map_err(tr)?;
        let root_issuer = Issuer::from_params(&root_params, &root_key);

        let pck_ca_key = P256Key::derive(seed, "intel/pck-ca");
        let pck_ca_params = params(
            "Hallmark Test SGX PCK Platform CA",
            2,
            IsCa::Ca(BasicConstraints::Constrained(0)),
            vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ],
        );
        let pck_ca_cert = pck_ca_params
            .signed_by(&pck_ca_key, &root_issuer)
            .map_err(tr)?;

        let tcb_signer_key = P256Key::derive(seed, "intel/tcb-signing");
        let tcb_params = params(
            "Hallmark Test SGX TCB Signing",
            3,
            IsCa::ExplicitNoCa,
            vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ],
        );
        let tcb_cert = tcb_params
            .signed_by(&tcb_signer_key, &root_issuer)
            .map_err(tr)?;

        let nvidia_key = P384Key::derive(seed, "nvidia/nras-signing");
        let nv_int_key = P384Key::derive(seed, "nvidia/intermediate");
        let nv_int_params = params(
            "Hallmark Test NVIDIA Attestation Intermediate",
            10,
            IsCa::Ca(BasicConstraints::Constrained(0)),
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
        );
        let mut nv_int_self = nv_int_params.clone();
        nv_int_self.use_authority_key_identifier_extension = false;
        let nv_int_cert = nv_int_self.self_signed(&nv_int_key).map_err(tr)?;
        let nv_int_issuer = Issuer::from_params(&nv_int_params, &nv_int_key);
        let mut nv_leaf_params = params(
            "Hallmark Test NVIDIA Attestation Service GPU",
            11,
            IsCa::ExplicitNoCa,
            vec![KeyUsagePurpose::DigitalSignature],
        );
        nv_leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let nv_leaf = nv_leaf_params
            .signed_by(&nvidia_key, &nv_int_issuer)
            .map_err(tr)?;

        let pck_leaf_key = P256Key::derive(seed, "intel/pck-leaf");
        let pck_issuer = Issuer::from_params(&pck_ca_params, &pck_ca_key);
        let pck_leaf_current_pem = pck_leaf_pem(seed, &pck_issuer, &pck_leaf_key, CPU_SVN_CURRENT)?;
        let pck_leaf_stale_pem = pck_leaf_pem(seed, &pck_issuer, &pck_leaf_key, CPU_SVN_STALE)?;

        Ok(Self {
            root_der: root_cert.der().to_vec(),
            root_pem: root_cert.pem(),
            root_key,
            root_params,
            pck_ca_key,
            pck_ca_params,
            pck_ca_pem: pck_ca_cert.pem(),
            tcb_signer_key,
            tcb_signer_pem: tcb_cert.pem(),
            pck_leaf_key,
            pck_leaf_current_pem,
            pck_leaf_stale_pem,
            attestation_key: P256Key::derive(seed, "intel/attestation-key"),
            nvidia_key,
            nvidia_x5c: vec![nv_leaf.der().to_vec(), nv_int_cert.der().to_vec()],
        })
    }

    /// The root CA certificate (DER) a verifier must be told to trust.
    pub fn root_ca_der(&self) -> &[u8] {
        &self.root_der
    }

    /// Collateral (`QuoteCollateralV3` JSON) current from `issued` for `valid_secs`.
    pub fn collateral(&self, issued: u64, valid_secs: u64) -> Result<serde_json::Value, TeeError> {
        let next = issued + valid_secs;
        let issue_date = hallmark_core::time::format_rfc3339(issued as i64);
        let next_update = hallmark_core::time::format_rfc3339(next as i64);
        let sgx =
            |svn: u8| -> Vec<serde_json::Value> { (0..16).map(|_| json!({"svn": svn})).collect() };
        let tdx_comps: Vec<serde_json::Value> = (0..16).map(|_| json!({"svn": 0})).collect();
        let tcb_date = "2025-01-01T00:00:00Z";
        let tcb_info = json!({
            "id": "TDX",
            "version": 3,
            "issueDate": issue_date,
            "nextUpdate": next_update,
            "fmspc": hex::encode_upper(TEST_FMSPC),
            "pceId": "0000",
            "tcbType": 0,
            "tcbEvaluationDataNumber": 17,
            "tdxModule": {
                "mrsigner": "0".repeat(96),
                "attributes": "0000000000000000",
                "attributesMask": "FFFFFFFFFFFFFFFF"
            },
            "tdxModuleIdentities": [{
                "id": format!("TDX_{TDX_MODULE_MAJOR:02X}"),
                "mrsigner": "0".repeat(96),
                "attributes": "0000000000000000",
                "attributesMask": "FFFFFFFFFFFFFFFF",
                "tcbLevels": [{"tcb": {"isvsvn": TDX_MODULE_ISVSVN}, "tcbDate": tcb_date, "tcbStatus": "UpToDate"}]
            }],
            "tcbLevels": [
                {"tcb": {"sgxtcbcomponents": sgx(CPU_SVN_CURRENT[0]), "pcesvn": PCE_SVN, "tdxtcbcomponents": tdx_comps},
                 "tcbDate": tcb_date, "tcbStatus": "UpToDate"},
                {"tcb": {"sgxtcbcomponents": sgx(CPU_SVN_STALE[0]), "pcesvn": PCE_SVN, "tdxtcbcomponents": tdx_comps},
                 "tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": "OutOfDate", "advisoryIDs": ["INTEL-SA-00837"]}
            ]
        })
        .to_string();
        let qe_identity = json!({
            "id": "TD_QE",
            "version": 2,
            "issueDate": issue_date,
            "nextUpdate": next_update,
            "tcbEvaluationDataNumber": 17,
            "miscselect": "00000000",
            "miscselectMask": "FFFFFFFF",
            "attributes": "11000000000000000000000000000000",
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": hex::encode_upper(TEST_QE_MRSIGNER),
            "isvprodid": 2,
            "tcbLevels": [{"tcb": {"isvsvn": QE_ISV_SVN}, "tcbDate": tcb_date, "tcbStatus": "UpToDate"}]
        })
        .to_string();

        let this_update = time::OffsetDateTime::from_unix_timestamp(issued as i64).map_err(tr)?;
        let next_crl = time::OffsetDateTime::from_unix_timestamp(next as i64).map_err(tr)?;
        let crl = |issuer: &Issuer<'_, &P256Key>| -> Result<Vec<u8>, TeeError> {
            let p = CertificateRevocationListParams {
                this_update,
                next_update: next_crl,
                crl_number: SerialNumber::from_slice(&[1]),
                issuing_distribution_point: None,
                revoked_certs: Vec::new(),
                key_identifier_method: KeyIdMethod::Sha256,
            };
            Ok(p.signed_by(issuer).map_err(tr)?.der().to_vec())
        };
        let root_issuer = Issuer::from_params(&self.root_params, &self.root_key);
        let pck_issuer = Issuer::from_params(&self.pck_ca_params, &self.pck_ca_key);
        let tcb_chain = format!("{}{}", self.tcb_signer_pem, self.root_pem);
        Ok(json!({
            "pck_crl_issuer_chain": format!("{}{}", self.pck_ca_pem, self.root_pem),
            "root_ca_crl": hex::encode(crl(&root_issuer)?),
            "pck_crl": hex::encode(crl(&pck_issuer)?),
            "tcb_info_issuer_chain": tcb_chain,
            "tcb_info": tcb_info,
            "tcb_info_signature": hex::encode(self.tcb_signer_key.sign_raw(tcb_info.as_bytes())),
            "qe_identity_issuer_chain": tcb_chain,
            "qe_identity": qe_identity,
            "qe_identity_signature": hex::encode(self.tcb_signer_key.sign_raw(qe_identity.as_bytes())),
        }))
    }

    /// A TD quote v4 with the given contents, signed through the whole synthetic chain.
    pub fn td_quote(&self, spec: &TdQuoteSpec) -> Result<Vec<u8>, TeeError> {
        let (cpu_svn, pck_leaf) = match spec.tcb {
            PlatformTcb::Current => (CPU_SVN_CURRENT, &self.pck_leaf_current_pem),
            PlatformTcb::Stale => (CPU_SVN_STALE, &self.pck_leaf_stale_pem),
        };
        // Header (48 bytes).
        let mut quote = Vec::with_capacity(5000);
        quote.extend_from_slice(&4u16.to_le_bytes()); // version
        quote.extend_from_slice(&2u16.to_le_bytes()); // ECDSA-256 with P-256
        quote.extend_from_slice(&0x81u32.to_le_bytes()); // TEE type TDX
        quote.extend_from_slice(&0u16.to_le_bytes()); // reserved
        quote.extend_from_slice(&0u16.to_le_bytes()); // reserved
        quote.extend_from_slice(&dcap_qvl::INTEL_QE_VENDOR_ID);
        quote.extend_from_slice(&[0u8; 20]); // user data

        // TD report 1.0 (584 bytes).
        let mut tee_tcb_svn = [0u8; 16];
        tee_tcb_svn[0] = TDX_MODULE_ISVSVN;
        tee_tcb_svn[1] = TDX_MODULE_MAJOR;
        quote.extend_from_slice(&tee_tcb_svn);
        quote.extend_from_slice(&[0x33; 48]); // MRSEAM
        quote.extend_from_slice(&[0u8; 48]); // MRSIGNERSEAM (Intel module: zero)
        quote.extend_from_slice(&[0u8; 8]); // SEAMATTRIBUTES
        let mut td_attributes = 0u64;
        if spec.debug {
            td_attributes |= 1; // TUD.DEBUG
        }
        td_attributes |= 1 << 28; // SEPT_VE_DISABLE, as production TDs run
        quote.extend_from_slice(&td_attributes.to_le_bytes());
        quote.extend_from_slice(&0x0000_0000_0006_02e7u64.to_le_bytes()); // XFAM
        quote.extend_from_slice(&spec.mr_td);
        quote.extend_from_slice(&[0u8; 48]); // MRCONFIGID
        quote.extend_from_slice(&[0u8; 48]); // MROWNER
        quote.extend_from_slice(&[0u8; 48]); // MROWNERCONFIG
        for r in &spec.rtmr {
            quote.extend_from_slice(r);
        }
        quote.extend_from_slice(&spec.report_data);
        debug_assert_eq!(quote.len(), 48 + 584);

        // QE report (384 bytes) binding the attestation key.
        let qe_auth_data = Sha256::digest(b"hallmark test QE auth data");
        let mut qe_hash = Sha256::new();
        qe_hash.update(self.attestation_key.public_xy());
        qe_hash.update(qe_auth_data);
        let mut qe_report = Vec::with_capacity(384);
        qe_report.extend_from_slice(&cpu_svn);
        qe_report.extend_from_slice(&0u32.to_le_bytes()); // MISCSELECT
        qe_report.extend_from_slice(&[0u8; 28]);
        let mut attributes = [0u8; 16];
        attributes[0] = 0x11; // INIT | MODE64BIT, not DEBUG
        qe_report.extend_from_slice(&attributes);
        qe_report.extend_from_slice(&Sha256::digest(b"hallmark test QE")); // MRENCLAVE
        qe_report.extend_from_slice(&[0u8; 32]);
        qe_report.extend_from_slice(&TEST_QE_MRSIGNER);
        qe_report.extend_from_slice(&[0u8; 96]);
        qe_report.extend_from_slice(&2u16.to_le_bytes()); // ISVPRODID
        qe_report.extend_from_slice(&QE_ISV_SVN.to_le_bytes());
        qe_report.extend_from_slice(&[0u8; 60]);
        qe_report.extend_from_slice(&qe_hash.finalize());
        qe_report.extend_from_slice(&[0u8; 32]);
        debug_assert_eq!(qe_report.len(), 384);

        let pck_chain = format!("{pck_leaf}{}{}", self.pck_ca_pem, self.root_pem);
        // QE report certification data: report, PCK signature, auth data, PCK chain (type 5).
        let mut qe_cert = Vec::new();
        qe_cert.extend_from_slice(&qe_report);
        qe_cert.extend_from_slice(&self.pck_leaf_key.sign_raw(&qe_report));
        qe_cert.extend_from_slice(&32u16.to_le_bytes());
        qe_cert.extend_from_slice(&qe_auth_data);
        qe_cert.extend_from_slice(&5u16.to_le_bytes());
        qe_cert.extend_from_slice(&len_u32(pck_chain.len())?);
        qe_cert.extend_from_slice(pck_chain.as_bytes());

        let mut auth = Vec::new();
        auth.extend_from_slice(&self.attestation_key.sign_raw(&quote));
        auth.extend_from_slice(&self.attestation_key.public_xy());
        auth.extend_from_slice(&6u16.to_le_bytes());
        auth.extend_from_slice(&len_u32(qe_cert.len())?);
        auth.extend_from_slice(&qe_cert);

        quote.extend_from_slice(&len_u32(auth.len())?);
        quote.extend_from_slice(&auth);
        Ok(quote)
    }

    /// The JWKS (NRAS form: P-384 keys with x5c) in which the synthetic NVIDIA key is published.
    pub fn nvidia_jwks(&self) -> serde_json::Value {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let std = base64::engine::general_purpose::STANDARD;
        let point = &self.nvidia_key.public_sec1;
        json!({"keys": [{
            "kty": "EC",
            "crv": "P-384",
            "kid": TEST_NVIDIA_KID,
            "x": b64.encode(&point[1..49]),
            "y": b64.encode(&point[49..97]),
            "x5c": self.nvidia_x5c.iter().map(|c| std.encode(c)).collect::<Vec<_>>(),
        }]})
    }

    /// An NRAS response body (detached EAT) for `gpus`, bound to `nonce_hex`, valid
    /// `iat..iat+ttl`, with the overall result NRAS would compute.
    pub fn nvidia_eat(
        &self,
        nonce_hex: &str,
        gpus: &[GpuClaims],
        iat: u64,
        ttl: u64,
    ) -> Result<serde_json::Value, TeeError> {
        let mut submods = serde_json::Map::new();
        let mut devices = serde_json::Map::new();
        let mut overall = true;
        for (i, g) in gpus.iter().enumerate() {
            let ok = g.measres == "success" && g.secboot && g.dbgstat == "disabled";
            overall &= ok;
            let claims = json!({
                "iss": NRAS_ISSUER,
                "iat": iat, "nbf": iat, "exp": iat + ttl,
                "eat_nonce": nonce_hex,
                "hwmodel": g.hwmodel,
                "measres": g.measres,
                "secboot": g.secboot,
                "dbgstat": g.dbgstat,
                "ueid": format!("{}", 1000 + i),
                "x-nvidia-gpu-attestation-report-signature-verified": true,
                "x-nvidia-gpu-attestation-report-nonce-match": true,
            });
            let jwt = self.sign_jwt(&claims)?;
            let name = format!("GPU-{i}");
            submods.insert(
                name.clone(),
                json!([
                    "DIGEST",
                    ["SHA-256", hex::encode(Sha256::digest(jwt.as_bytes()))]
                ]),
            );
            devices.insert(name, json!(jwt));
        }
        let overall_claims = json!({
            "sub": "NVIDIA-PLATFORM-ATTESTATION",
            "iss": NRAS_ISSUER,
            "iat": iat, "nbf": iat, "exp": iat + ttl,
            "eat_nonce": nonce_hex,
            "x-nvidia-overall-att-result": overall,
            "submods": submods,
        });
        let overall_jwt = self.sign_jwt(&overall_claims)?;
        Ok(json!([["JWT", overall_jwt], devices]))
    }

    /// Signs claims as a compact ES384 JWS under [`TEST_NVIDIA_KID`]. Public so tests can
    /// forge tokens with chosen defects through the real signer.
    pub fn sign_jwt(&self, claims: &serde_json::Value) -> Result<String, TeeError> {
        use p384::ecdsa::signature::Signer as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = json!({"kid": TEST_NVIDIA_KID, "alg": "ES384"});
        let signing_input = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let sig: p384::ecdsa::Signature = self.nvidia_key.sk.sign(signing_input.as_bytes());
        Ok(format!("{signing_input}.{}", b64.encode(sig.to_bytes())))
    }
}

/// A PCK leaf for the given CPU SVN, carrying the Intel SGX extension, issued by the PCK CA.
fn pck_leaf_pem(
    seed: &[u8],
    issuer: &Issuer<'_, &P256Key>,
    leaf_key: &P256Key,
    cpu_svn: [u8; 16],
) -> Result<String, TeeError> {
    let mut p = params(
        "Hallmark Test SGX PCK Certificate",
        100 + u64::from(cpu_svn[0]),
        IsCa::ExplicitNoCa,
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ],
    );
    p.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 2, 840, 113741, 1, 13, 1],
        sgx_extension(seed, cpu_svn),
    )];
    Ok(p.signed_by(leaf_key, issuer).map_err(tr)?.pem())
}

fn len_u32(n: usize) -> Result<[u8; 4], TeeError> {
    u32::try_from(n)
        .map(u32::to_le_bytes)
        .map_err(|_| TeeError::TestRoot("field longer than 4 GiB".into()))
}

/// The Intel SGX extension (OID 1.2.840.113741.1.13.1) of a PCK certificate: PPID, TCB
/// (16 component SVNs, PCESVN, CPUSVN), PCE-ID, FMSPC and SGX type, as Intel encodes them.
fn sgx_extension(seed: &[u8], cpu_svn: [u8; 16]) -> Vec<u8> {
    use yasna::models::ObjectIdentifier;
    let oid = |tail: &[u64]| {
        let mut v = vec![1, 2, 840, 113741, 1, 13, 1];
        v.extend_from_slice(tail);
        ObjectIdentifier::from_slice(&v)
    };
    let ppid = {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(b"ppid");
        h.finalize()[..16].to_vec()
    };
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[1]));
                w.next().write_bytes(&ppid);
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[2]));
                w.next().write_sequence(|w| {
                    for (i, svn) in cpu_svn.iter().enumerate() {
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&oid(&[2, i as u64 + 1]));
                            w.next().write_u8(*svn);
                        });
                    }
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&oid(&[2, 17]));
                        w.next().write_u16(PCE_SVN);
                    });
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&oid(&[2, 18]));
                        w.next().write_bytes(&cpu_svn);
                    });
                });
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[3]));
                w.next().write_bytes(&[0, 0]);
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[4]));
                w.next().write_bytes(&TEST_FMSPC);
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[5]));
                w.next().write_enum(0);
            });
        })
    })
}
