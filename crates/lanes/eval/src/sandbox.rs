//! The deterministic sandbox: wasmi (pinned) with fuel metering, the Wasm deterministic
//! profile (canonical NaNs), no threads, fixed memory, table and stack limits, and only the
//! host functions this lane offers.
//!
//! The guest has no clock, no randomness, no sockets and no filesystem because nothing
//! offers them: the only imports that resolve are the tools in [`OFFERED`], under module
//! `hallmark`. Every tool call is recorded in the task's tool-call log and costs published
//! fuel ([`TOOL_CALL_FUEL`] plus one per [`FUEL_BYTES_PER_UNIT`] bytes moved), so the same
//! module on the same input spends the same fuel on every machine. A wall-clock deadline runs
//! beside as a safety net only: fuel ends every run first unless the host machine is starved.

use std::collections::BTreeMap;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmi::errors::{ErrorKind, HostError, InstantiationError, MemoryError};
use wasmi::{
    Caller, CompilationMode, Config, Engine, Extern, Linker, Module, Store, StoreLimits,
    StoreLimitsBuilder, TrapCode,
};

/// The engine and version every validator runs (fuel is counted on its bytecode).
pub const ENGINE: &str = "wasmi 2.0.0 (deterministic profile, fuel metering)";
/// The module every tool is imported from.
pub const TOOL_MODULE: &str = "hallmark";
/// The tools a submission may import, by name under [`TOOL_MODULE`].
pub const OFFERED: &[&str] = &[
    "input_len",
    "input_read",
    "output",
    "corpus",
    "kv_get",
    "kv_put",
];
/// Fuel every tool call costs before the bytes it moves.
pub const TOOL_CALL_FUEL: u64 = 100;
/// One more unit of fuel per this many bytes a tool call moves.
pub const FUEL_BYTES_PER_UNIT: u64 = 8;
/// The longest key-value store key, bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// The most keys a task's key-value store holds.
pub const MAX_KV_ENTRIES: usize = 4096;
/// The largest output a task may write, bytes.
pub const MAX_OUTPUT_BYTES: usize = 4096;
/// The native stack of the thread a task runs on (wasmi keeps wasm frames on its own heap
/// stack; host calls and translation still need room).
pub const TASK_STACK_BYTES: usize = 32 << 20;
/// The export every submission provides: runs one task.
pub const ENTRY: &str = "run";

/// The limits of one task's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Limits {
    /// Fuel per task.
    pub fuel: u64,
    /// Linear memory cap, 64 KiB pages.
    pub memory_pages: u32,
    /// Table cap, elements.
    pub table_elements: u32,
    /// Call depth cap.
    pub max_recursion_depth: u32,
    /// Safety net only: a run still going after this long is abandoned (`wall_clock`).
    pub wall_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 5_000_000,
            memory_pages: 16,
            table_elements: 1024,
            max_recursion_depth: 1024,
            wall_ms: 10_000,
        }
    }
}

/// Why a run ended without an answer. The codes are stable and land in reports.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, schemars::JsonSchema,
)]
#[error("{code}: {detail}")]
pub struct Contained {
    /// `invalid_module`, `unknown_import`, `missing_export`, `instantiate` (e.g. an offered
    /// tool imported with the wrong type), `out_of_fuel`, `memory_limit`, `table_limit`,
    /// `stack_limit`, `tool_error`, `trap` or `wall_clock`.
    pub code: String,
    pub detail: String,
}

impl Contained {
    fn new(code: &str, detail: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            detail: detail.into(),
        }
    }
}

/// One recorded tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ToolCall {
    pub tool: String,
    /// The call's argument (an index, a length, or a key as hex).
    pub arg: String,
    /// What the tool answered.
    pub result: String,
}

/// What one task's run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRun {
    /// `Ok` when `run` returned; otherwise why it was stopped.
    pub outcome: Result<(), Contained>,
    /// What the guest wrote through `output` (empty unless it returned).
    pub output: Vec<u8>,
    /// Fuel spent, tools included.
    pub fuel: u64,
    pub tool_log: Vec<ToolCall>,
    /// Advisory wall time, ms: never part of a report's hash.
    pub wall_ms: u64,
}

/// A tool refused a call: the guest traps with `tool_error`.
#[derive(Debug)]
struct ToolFault(String);

impl std::fmt::Display for ToolFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl HostError for ToolFault {}

/// The host side of one task: its input, the pinned corpus, its scratch store and its log.
struct HostState {
    input: Arc<[u8]>,
    corpus: Arc<[u64]>,
    kv: BTreeMap<Vec<u8>, i64>,
    output: Vec<u8>,
    log: Vec<ToolCall>,
    limits: StoreLimits,
    /// Whether the engine meters fuel (always, but for the bench's baseline).
    metered: bool,
}

/// A compiled submission, ready for many tasks.
#[derive(Clone)]
pub struct Compiled {
    module: Module,
}

/// The sandbox: one engine and its linker of tools, shared by every run.
#[derive(Clone)]
pub struct Sandbox {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    limits: Limits,
    metered: bool,
}

fn fault(msg: impl Into<String>) -> wasmi::Error {
    wasmi::Error::host(ToolFault(msg.into()))
}

/// Charges a tool call's fuel; out of fuel traps like any instruction would.
fn charge(caller: &mut Caller<'_, HostState>, bytes: usize) -> Result<(), wasmi::Error> {
    let cost = TOOL_CALL_FUEL + bytes as u64 / FUEL_BYTES_PER_UNIT;
    if !caller.data().metered {
        // An unmetered engine (the bench's baseline only): nothing to charge.
        return Ok(());
    }
    let left = caller.get_fuel()?;
    if left < cost {
        caller.set_fuel(0)?;
        return Err(wasmi::Error::from(TrapCode::OutOfFuel));
    }
    caller.set_fuel(left - cost)
}

fn memory(caller: &Caller<'_, HostState>) -> Result<wasmi::Memory, wasmi::Error> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| fault("the module exports no memory"))
}

fn log(caller: &mut Caller<'_, HostState>, tool: &str, arg: String, result: String) {
    caller.data_mut().log.push(ToolCall {
        tool: tool.into(),
        arg,
        result,
    });
}

fn read_key(caller: &Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>, wasmi::Error> {
    let len = usize::try_from(len).map_err(|_| fault("negative key length"))?;
    if len > MAX_KEY_BYTES {
        return Err(fault(format!(
            "key of {len} bytes: the longest is {MAX_KEY_BYTES}"
        )));
    }
    let mut key = vec![0u8; len];
    memory(caller)?
        .read(caller, ptr as u32 as usize, &mut key)
        .map_err(|e| fault(format!("key out of bounds: {e}")))?;
    Ok(key)
}

fn tools(engine: &Engine) -> Result<Linker<HostState>, wasmi::errors::LinkerError> {
    let mut l = Linker::<HostState>::new(engine);
    l.func_wrap(
        TOOL_MODULE,
        "input_len",
        |mut c: Caller<'_, HostState>| -> Result<i32, wasmi::Error> {
            charge(&mut c, 0)?;
            let n = c.data().input.len() as i32;
            log(&mut c, "input_len", String::new(), n.to_string());
            Ok(n)
        },
    )?;
    l.func_wrap(
        TOOL_MODULE,
        "input_read",
        |mut c: Caller<'_, HostState>, ptr: i32| -> Result<(), wasmi::Error> {
            let input = c.data().input.clone();
            charge(&mut c, input.len())?;
            memory(&c)?
                .write(&mut c, ptr as u32 as usize, &input)
                .map_err(|e| fault(format!("input_read out of bounds: {e}")))?;
            log(
                &mut c,
                "input_read",
                ptr.to_string(),
                input.len().to_string(),
            );
            Ok(())
        },
    )?;
    l.func_wrap(
        TOOL_MODULE,
        "output",
        |mut c: Caller<'_, HostState>, ptr: i32, len: i32| -> Result<(), wasmi::Error> {
            let len = usize::try_from(len).map_err(|_| fault("negative output length"))?;
            charge(&mut c, len)?;
            if c.data().output.len() + len > MAX_OUTPUT_BYTES {
                return Err(fault(format!("output over {MAX_OUTPUT_BYTES} bytes")));
            }
            let mut buf = vec![0u8; len];
            memory(&c)?
                .read(&c, ptr as u32 as usize, &mut buf)
                .map_err(|e| fault(format!("output out of bounds: {e}")))?;
            log(&mut c, "output", len.to_string(), hex::encode(&buf));
            c.data_mut().output.extend_from_slice(&buf);
            Ok(())
        },
    )?;
    l.func_wrap(
        TOOL_MODULE,
        "corpus",
        |mut c: Caller<'_, HostState>, index: i32| -> Result<i64, wasmi::Error> {
            charge(&mut c, 8)?;
            let corpus = c.data().corpus.clone();
            let word = usize::try_from(index)
                .ok()
                .and_then(|i| corpus.get(i))
                .ok_or_else(|| {
                    fault(format!("corpus index {index} outside 0..{}", corpus.len()))
                })?;
            log(&mut c, "corpus", index.to_string(), word.to_string());
            Ok(*word as i64)
        },
    )?;
    l.func_wrap(
        TOOL_MODULE,
        "kv_get",
        |mut c: Caller<'_, HostState>, ptr: i32, len: i32| -> Result<i64, wasmi::Error> {
            let key = read_key(&c, ptr, len)?;
            charge(&mut c, key.len())?;
            let v = c.data().kv.get(&key).copied().unwrap_or(0);
            log(&mut c, "kv_get", hex::encode(&key), v.to_string());
            Ok(v)
        },
    )?;
    l.func_wrap(
        TOOL_MODULE,
        "kv_put",
        |mut c: Caller<'_, HostState>,
         ptr: i32,
         len: i32,
         value: i64|
         -> Result<(), wasmi::Error> {
            let key = read_key(&c, ptr, len)?;
            charge(&mut c, key.len() + 8)?;
            let kv = &mut c.data_mut().kv;
            if kv.len() >= MAX_KV_ENTRIES && !kv.contains_key(&key) {
                return Err(fault(format!(
                    "the key-value store holds {MAX_KV_ENTRIES} keys at most"
                )));
            }
            kv.insert(key.clone(), value);
            log(&mut c, "kv_put", hex::encode(&key), value.to_string());
            Ok(())
        },
    )?;
    Ok(l)
}

/// Maps an execution error to its containment reason.
fn classify(e: &wasmi::Error) -> Contained {
    if let Some(f) = e.downcast_ref::<ToolFault>() {
        return Contained::new("tool_error", f.0.clone());
    }
    match e.as_trap_code() {
        Some(TrapCode::OutOfFuel) => return Contained::new("out_of_fuel", e.to_string()),
        Some(TrapCode::GrowthOperationLimited) => {
            return Contained::new("memory_limit", "memory.grow beyond the lane's memory cap")
        }
        Some(TrapCode::StackOverflow) => return Contained::new("stack_limit", e.to_string()),
        _ => {}
    }
    match e.kind() {
        ErrorKind::Memory(MemoryError::ResourceLimiterDeniedAllocation)
        | ErrorKind::Instantiation(InstantiationError::FailedToInstantiateMemory(
            MemoryError::ResourceLimiterDeniedAllocation,
        )) => Contained::new(
            "memory_limit",
            "the module's memory exceeds the lane's memory cap",
        ),
        ErrorKind::Instantiation(InstantiationError::FailedToInstantiateTable(_))
        | ErrorKind::Instantiation(InstantiationError::TooManyTables)
        | ErrorKind::Instantiation(InstantiationError::TooManyMemories) => {
            Contained::new("table_limit", e.to_string())
        }
        ErrorKind::Instantiation(_) => Contained::new("instantiate", e.to_string()),
        _ => Contained::new("trap", e.to_string()),
    }
}

impl Sandbox {
    /// A sandbox with fuel metering on (the lane's).
    pub fn new(limits: Limits) -> Result<Self, Contained> {
        Self::with_metering(limits, true)
    }

    /// A sandbox with metering on or off (off only for the bench's baseline: without fuel a
    /// looping guest would run until the wall clock).
    pub fn with_metering(limits: Limits, metered: bool) -> Result<Self, Contained> {
        let mut config = Config::default();
        config
            .consume_fuel(metered)
            // Translate every function at compile time: lazy translation charges fuel on a
            // function's first call, so a module's fuel would depend on what ran before.
            .compilation_mode(CompilationMode::Eager)
            .set_max_recursion_depth(limits.max_recursion_depth as usize)
            .wasm_multi_memory(false)
            .wasm_custom_page_sizes(false)
            .ignore_custom_sections(true);
        let engine = Engine::new(&config);
        let linker = tools(&engine).map_err(|e| Contained::new("invalid_module", e.to_string()))?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            limits,
            metered,
        })
    }

    /// The limits every run gets.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Validates and compiles a module, and checks its imports and exports against what the
    /// lane offers before anything runs.
    pub fn compile(&self, wasm: &[u8]) -> Result<Compiled, Contained> {
        let module = Module::new(&self.engine, wasm)
            .map_err(|e| Contained::new("invalid_module", e.to_string()))?;
        for import in module.imports() {
            let offered = import.module() == TOOL_MODULE && OFFERED.contains(&import.name());
            if !offered {
                return Err(Contained::new(
                    "unknown_import",
                    format!(
                        "imports {:?}.{:?}, which this lane does not offer (it offers {TOOL_MODULE:?}.{OFFERED:?})",
                        import.module(),
                        import.name()
                    ),
                ));
            }
        }
        let has = |name: &str| module.exports().any(|e| e.name() == name);
        if !has(ENTRY) || !has("memory") {
            return Err(Contained::new(
                "missing_export",
                format!("a submission exports {ENTRY:?} and \"memory\""),
            ));
        }
        Ok(Compiled { module })
    }

    /// Runs one task: a fresh instance, the input, fuel, and the wall-clock safety net.
    pub fn run(&self, compiled: &Compiled, input: Arc<[u8]>, corpus: Arc<[u64]>) -> TaskRun {
        let started = Instant::now();
        let (tx, rx) = mpsc::channel();
        let (sandbox, module) = (self.clone(), compiled.module.clone());
        let spawned = std::thread::Builder::new()
            .name("eval-task".into())
            .stack_size(TASK_STACK_BYTES)
            .spawn(move || {
                let _ = tx.send(sandbox.run_here(&module, input, corpus));
            });
        let wall = Duration::from_millis(self.limits.wall_ms);
        let mut run = match spawned {
            Err(e) => TaskRun {
                outcome: Err(Contained::new("trap", format!("no thread to run on: {e}"))),
                output: Vec::new(),
                fuel: 0,
                tool_log: Vec::new(),
                wall_ms: 0,
            },
            Ok(_) => rx.recv_timeout(wall).unwrap_or_else(|_| TaskRun {
                // The thread ends by itself once its fuel is gone; its result is dropped.
                outcome: Err(Contained::new(
                    "wall_clock",
                    format!("still running after {} ms", self.limits.wall_ms),
                )),
                output: Vec::new(),
                fuel: self.limits.fuel,
                tool_log: Vec::new(),
                wall_ms: 0,
            }),
        };
        run.wall_ms = started.elapsed().as_millis() as u64;
        run
    }

    /// Runs one task on the calling thread (no wall clock).
    fn run_here(&self, module: &Module, input: Arc<[u8]>, corpus: Arc<[u64]>) -> TaskRun {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_pages as usize * 65536)
            .table_elements(self.limits.table_elements as usize)
            .instances(1)
            .memories(1)
            .tables(1)
            .trap_on_grow_failure(true)
            .build();
        let state = HostState {
            input,
            corpus,
            kv: BTreeMap::new(),
            output: Vec::new(),
            log: Vec::new(),
            limits,
            metered: self.metered,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let metered = self.metered && store.set_fuel(self.limits.fuel).is_ok();
        let outcome = self
            .linker
            .instantiate_and_start(&mut store, module)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&store, ENTRY))
            .and_then(|run| run.call(&mut store, ()))
            .map_err(|e| classify(&e));
        let fuel = if metered {
            self.limits.fuel - store.get_fuel().unwrap_or(0)
        } else {
            0
        };
        let state = store.into_data();
        TaskRun {
            output: if outcome.is_ok() {
                state.output
            } else {
                Vec::new()
            },
            outcome,
            fuel,
            tool_log: state.log,
            wall_ms: 0,
        }
    }
}
