//! `capture!`: a closure whose captured variables travel to executors with it.

/// Writes a closure that captures the listed variables, for transformations and actions that
/// run on executors. The variables are serialized and shipped with the plan; each must be
/// serializable (a compile error points at the one that is not).
///
/// ```ignore
/// let stop = vec!["the".to_string()];
/// let threshold = 0.5;
/// words.filter(capture!([stop, threshold] move |w: &(String, f64)| !stop.contains(&w.0) && w.1 > threshold))
/// ```
///
/// With `move` the variables are moved into the closure; without, it captures clones and the
/// originals stay usable. Inside the body `Copy` variables are values and others references, as
/// a `Fn` closure sees them. The closure's arguments are either all typed (`|k: u32, v: f64|`)
/// or all untyped patterns (`|(k, v)|`).
#[macro_export]
macro_rules! capture {
    ([$($var:ident),* $(,)?] move $($closure:tt)*) => {
        $crate::__capture_closure!(@params [$($var),*] ($($var),*) $($closure)*)
    };
    ([$($var:ident),* $(,)?] $($closure:tt)*) => {
        $crate::__capture_closure!(@params [$($var),*] ($(::core::clone::Clone::clone(&$var)),*) $($closure)*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __capture_closure {
    // Arguments are either all `name: Type` or all untyped patterns.
    (@params [$($var:ident),*] ($($value:expr),*) |$($arg:ident : $ty:ty),+ $(,)?| $body:expr) => {
        $crate::__capture_closure!(@build [$($var),*] ($($value),*) [$($arg: $ty),+] $body)
    };
    (@params [$($var:ident),*] ($($value:expr),*) |$($arg:pat_param),+ $(,)?| $body:expr) => {
        $crate::__capture_closure!(@build [$($var),*] ($($value),*) [$($arg),+] $body)
    };
    (@build [$($var:ident),*] ($($value:expr),*) [$($param:tt)*] $body:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{BindByRef as _, BindByValue as _};
        $( $crate::__private::must_be_capturable(&$var); )*
        let __tessera_env = $crate::__private::Env::new(($($value,)*));
        move |$($param)*| {
            #[allow(unused_variables)]
            let ($($var,)*) = __tessera_env.value();
            $(
                #[allow(unused_variables)]
                let $var = (&$crate::__private::Bind($var)).bind();
            )*
            $body
        }
    }};
}
