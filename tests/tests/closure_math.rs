//! A closure's `exp` on an executor is the executor's own (tessera-libm's, which answers
//! saturated inputs without glibc's slow path), and gives the C library's results bit for bit:
//! the same values the cell computes in the session's own process, which calls glibc's.

use tessera_e2e::{Scratch, tessera_run};

#[test]
fn a_closures_exp_is_the_executors_and_gives_the_c_librarys_results() {
    let dir = Scratch::new("closure-math");
    let script = r#"
#[repr(C)]
struct DlInfo {
    file: *const std::ffi::c_char,
    base: *mut std::ffi::c_void,
    symbol: *const std::ffi::c_char,
    address: *mut std::ffi::c_void,
}
unsafe extern "C" {
    fn dladdr(address: *const std::ffi::c_void, info: *mut DlInfo) -> i32;
    fn exp(x: f64) -> f64;
}
/// The file of the loaded object whose `exp` this code calls.
fn file_defining_exp() -> String {
    let mut info = DlInfo {
        file: std::ptr::null(),
        base: std::ptr::null_mut(),
        symbol: std::ptr::null(),
        address: std::ptr::null_mut(),
    };
    let function: unsafe extern "C" fn(f64) -> f64 = exp;
    if unsafe { dladdr(function as *const std::ffi::c_void, &mut info) } == 0 || info.file.is_null() {
        return "unknown".to_string();
    }
    unsafe { std::ffi::CStr::from_ptr(info.file) }.to_string_lossy().into_owned()
}
// %%
// Ordinary inputs, both saturated ranges, the subnormal results between, and each threshold's
// neighbours.
let mut inputs: Vec<f64> = (0..8000).map(|i| -1600.0 + i as f64 * 0.4).collect();
for edge in [709.782712893384f64, 709.8, -708.3964185322641, -745.1332191019412, -745.2] {
    let (mut below, mut above) = (edge, edge);
    for _ in 0..32 {
        below = below.next_down();
        above = above.next_up();
        inputs.extend([below, above]);
    }
}
inputs.extend([f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN, 0.0, -0.0]);
let here: Vec<u64> = inputs.iter().map(|x| x.exp().to_bits()).collect();
let there: Vec<u64> = sc.parallelize(inputs.clone(), 4).map(|x: f64| x.exp().to_bits()).collect();
let differing = inputs.iter().zip(here.iter().zip(&there)).filter(|(_, (a, b))| a != b).count();
println!("inputs {} differing {differing}", inputs.len());
// %%
println!("session {}", file_defining_exp());
let files: Vec<String> = sc.parallelize(vec![0u8, 1], 2).map(|_: u8| file_defining_exp()).collect();
for file in files {
    println!("executor {file}");
}
"#;
    let run = tessera_run(&dir.0, script, "local[2]", &[]);
    run.expect_success();
    let lines = run.lines();
    let inputs = 8000 + 5 * 64 + 6;
    assert_eq!(
        lines[0],
        format!("inputs {inputs} differing 0"),
        "{}",
        run.stderr
    );
    assert!(
        lines[1].starts_with("session ") && lines[1].contains("libm.so"),
        "the session's own process calls the C library's exp: {lines:?}"
    );
    let executors: Vec<&&str> = lines[2..].iter().collect();
    assert_eq!(executors.len(), 2, "{lines:?}");
    for line in executors {
        assert!(
            line.starts_with("executor ") && line.ends_with("/tessera-executor"),
            "a closure on an executor calls the executor's exp: {line}"
        );
    }
}
