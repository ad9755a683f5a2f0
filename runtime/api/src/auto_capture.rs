//! What the session's rewrite of a `move` closure expands to, so that closures capture as in
//! Spark without `capture!`.
//!
//! The session (`tessera_session::auto_capture`) finds each `move` closure of a cell that uses
//! variables, and turns `move |x| x % k == 0` into a block that builds an [`Env`] of *slots*,
//! one per variable, and a closure that captures only that `Env`:
//!
//! ```ignore
//! {
//!     struct __tessera_capture_k(::core::cell::Cell<()>);
//!     let __tessera_env = env(((&&&&Probe(&k)).tag().take(&k, "k", PhantomData::<__tessera_capture_k>),));
//!     move |x| { let __tessera_env = &__tessera_env; x % (*Slot::place(&__tessera_env.value().0)) == 0 }
//! }
//! ```
//!
//! Each use of the variable becomes `(*place)`: a place of the variable's own type, as the
//! captured field of a `move` closure is, so the body type-checks as it did.
//!
//! Which slot a variable gets depends on its type, chosen at compile time by autoref-based
//! specialisation (`Probe` behind four references: method lookup tries the impl for the most
//! references first, and skips an impl whose bounds do not hold):
//!
//! 1. `&str`: shipped as a string (and interned where it arrives);
//! 2. serializable and `Clone` (numbers, strings, vectors, maps, broadcast and accumulator
//!    handles, the cell's derived types): a clone (a copy) is shipped — so the variable stays
//!    usable in later cells, as a Spark closure's serialized copy leaves it;
//! 3. `Copy + Send + Sync + 'static` but not serializable (a closure, a function pointer):
//!    shipped only if zero-sized (a closure that captures nothing is conjured on the executor);
//!    otherwise shipping fails naming the variable;
//! 4. anything else that is `Clone`: kept for local use only. The slot holds a marker type
//!    named after the variable that is not `Sync`, so passing the closure to an RDD operation
//!    (which needs `Sync`) is a compile error whose text names the variable; the session turns
//!    it into a message that says what to do. An iterator's `map` in the cell does not need
//!    `Sync` and keeps working.
//! 5. not `Clone`: does not compile; the session then compiles the cell as written (a `move`
//!    closure moving the value), which is what Rust would do.

use crate::ship::Env;
use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::marker::PhantomData;

/// The variable under test: a reference to it, whose type picks the tag.
pub struct Probe<'a, T>(pub &'a T);
impl<T> Clone for Probe<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Probe<'_, T> {}

/// Builds the environment of a rewritten closure from its slots.
pub fn env<C: Serialize + DeserializeOwned>(slots: C) -> Env<C> {
    Env::auto(slots)
}

/// A captured variable as the closure's body sees it.
pub trait Slot {
    /// The variable's type.
    type Value;
    /// The variable's value, which the body uses as the place `(*slot.place())`.
    fn place(&self) -> &Self::Value;
}

macro_rules! tags {
    ($($via:ident $tag:ident [$($refs:tt)*] {$($bound:tt)+})*) => {$(
        #[doc = concat!("Picks [`", stringify!($tag), "`] when its bounds hold.")]
        pub trait $via<T> {
            /// The tag for this variable's type.
            fn tag(&self) -> $tag<T>;
        }
        impl<T: $($bound)+> $via<T> for $($refs)* Probe<'_, T> {
            fn tag(&self) -> $tag<T> {
                $tag(PhantomData)
            }
        }
        #[doc = concat!("The slot kind [`", stringify!($via), "`] chose.")]
        pub struct $tag<T>(PhantomData<T>);
    )*};
}

tags! {
    ViaStr StrTag [&&&] {StrLike}
    ViaShip ShipTag [&&] {crate::ship::Capturable + Clone}
    ViaConjure ConjureTag [&] {Copy + Send + Sync + 'static}
    ViaLocal LocalTag [] {Clone}
}

/// `&str`, for the tag that ships it as a string.
pub trait StrLike {
    /// The string.
    fn as_str(&self) -> &str;
}
impl StrLike for &str {
    fn as_str(&self) -> &str {
        self
    }
}

/// The last resort: a type that is not `Clone` cannot be captured by reference, so the cell
/// is compiled as written instead.
pub trait ViaNothing<T> {
    /// Always fails to compile through [`NoTag::take`]. By value, so that method lookup
    /// reaches it after every `&self` tag.
    fn tag(self) -> NoTag<T>;
}
impl<T> ViaNothing<T> for Probe<'_, T> {
    fn tag(self) -> NoTag<T> {
        NoTag(PhantomData)
    }
}
/// The tag of a variable the rewrite cannot capture.
pub struct NoTag<T>(PhantomData<T>);

/// Marks why [`NoTag::take`] does not compile.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is neither Copy nor Clone: Tessera captures it as the cell wrote it"
)]
pub trait CopyOrClone {}
impl<T: Clone> CopyOrClone for T {}

impl<T> NoTag<T> {
    /// Does not compile for the types that reach it (they are not `Clone`).
    pub fn take<M>(self, _: &T, _: &'static str, _: PhantomData<M>) -> Never
    where
        T: CopyOrClone,
    {
        unreachable!("only types that are not Clone reach this tag")
    }
}

/// The slot of [`NoTag`], which is never built.
pub enum Never {}
impl Serialize for Never {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        match *self {}
    }
}
impl<'de> Deserialize<'de> for Never {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(D::Error::custom("a capture that cannot exist was shipped"))
    }
}
impl Slot for Never {
    type Value = ();
    fn place(&self) -> &() {
        match *self {}
    }
}

impl<T: StrLike> StrTag<T> {
    /// Keeps the string for as long as the process runs (see [`ShippedStr`]).
    pub fn take<M>(self, value: &T, _: &'static str, _: PhantomData<M>) -> ShippedStr {
        ShippedStr(intern(value.as_str()))
    }
}
impl<T: crate::ship::Capturable + Clone> ShipTag<T> {
    /// Clones the value (copies it, when it is `Copy`).
    pub fn take<M>(self, value: &T, _: &'static str, _: PhantomData<M>) -> Shipped<T> {
        Shipped(value.clone())
    }
}
impl<T: Copy + Send + Sync + 'static> ConjureTag<T> {
    /// Copies the value, which ships only if it is zero-sized.
    pub fn take<M>(self, value: &T, name: &'static str, _: PhantomData<M>) -> Conjured<T> {
        Conjured {
            value: *value,
            name,
        }
    }
}
impl<T: Clone> LocalTag<T> {
    /// Clones the value, for local use.
    pub fn take<M>(self, value: &T, name: &'static str, _: PhantomData<M>) -> Local<T, M> {
        Local {
            value: value.clone(),
            name,
            _not_shippable: PhantomData,
        }
    }
}

/// A serializable value.
pub struct Shipped<T>(T);
impl<T> Slot for Shipped<T> {
    type Value = T;
    fn place(&self) -> &T {
        &self.0
    }
}
// Written out rather than derived: evcxr's rust-analyzer, which infers the types of a cell's
// variables, does not expand derive macros, and would not see derived impls.
impl<T: Serialize> Serialize for Shipped<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shipped<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Shipped)
    }
}

/// A `&str`. The body uses it as a `&str` place, so the string must outlive every use of the
/// closure: it is interned for the life of the process, once per distinct string.
pub struct ShippedStr(&'static str);
impl Slot for ShippedStr {
    type Value = &'static str;
    fn place(&self) -> &&'static str {
        &self.0
    }
}
impl Serialize for ShippedStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}
impl<'de> Deserialize<'de> for ShippedStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(ShippedStr(intern(&value)))
    }
}

/// `text`, kept for the life of the process. Each cell library has its own table (statics are
/// per library); that only means a string may be kept once per library.
fn intern(text: &str) -> &'static str {
    static STRINGS: std::sync::Mutex<BTreeSet<&'static str>> =
        std::sync::Mutex::new(BTreeSet::new());
    let mut strings = STRINGS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(kept) = strings.get(text) {
        return kept;
    }
    let kept: &'static str = Box::leak(text.to_owned().into_boxed_str());
    strings.insert(kept);
    kept
}

/// A value that ships only if it has no bytes: a closure that captures nothing.
pub struct Conjured<T> {
    value: T,
    name: &'static str,
}
impl<T> Slot for Conjured<T> {
    type Value = T;
    fn place(&self) -> &T {
        &self.value
    }
}
impl<T> Serialize for Conjured<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if size_of::<T>() == 0 {
            serializer.serialize_unit()
        } else {
            Err(S::Error::custom(not_serializable(
                self.name,
                std::any::type_name::<T>(),
            )))
        }
    }
}
impl<'de, T> Deserialize<'de> for Conjured<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <()>::deserialize(deserializer)?;
        if size_of::<T>() != 0 {
            return Err(D::Error::custom(
                "a captured value with bytes was shipped as if it had none",
            ));
        }
        // SAFETY: `T` is zero-sized: it has no bytes to initialize (which clippy's lint, not
        // knowing the size, cannot see).
        #[allow(clippy::uninit_assumed_init)]
        let value = unsafe { std::mem::MaybeUninit::<T>::uninit().assume_init() };
        Ok(Conjured { value, name: "" })
    }
}

/// A value for local use only; `M`, named after the variable, is not `Sync`, so neither is a
/// closure holding this, and RDD operations refuse it at compile time.
pub struct Local<T, M> {
    value: T,
    name: &'static str,
    _not_shippable: PhantomData<M>,
}
impl<T, M> Slot for Local<T, M> {
    type Value = T;
    fn place(&self) -> &T {
        &self.value
    }
}
impl<T, M> Serialize for Local<T, M> {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(S::Error::custom(not_serializable(
            self.name,
            std::any::type_name::<T>(),
        )))
    }
}
impl<'de, T, M> Deserialize<'de> for Local<T, M> {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(D::Error::custom(
            "a value captured for local use only was shipped",
        ))
    }
}

/// The message for a captured variable that cannot be sent to executors.
pub fn not_serializable(name: &str, type_name: &str) -> String {
    format!(
        "the closure captures `{name}` (a `{type_name}`), which cannot be sent to executors: \
         captured values must implement serde's Serialize and Deserialize \
         (`#[derive(Serialize, Deserialize)]` on your own types); or build the value inside \
         the closure"
    )
}

#[cfg(test)]
mod tests {
    //! The expansion the session writes, by hand, for each kind of slot.

    use super::*;

    /// One variable's slot, as the session's rewrite writes it.
    macro_rules! slot {
        ($var:ident, $marker:ident) => {{
            #[allow(unused_imports)]
            use crate::__private::auto::{
                ViaConjure as _, ViaLocal as _, ViaNothing as _, ViaShip as _, ViaStr as _,
            };
            (&&&&Probe(&$var))
                .tag()
                .take(&$var, stringify!($var), PhantomData::<$marker>)
        }};
    }

    #[allow(non_camel_case_types)]
    struct marker(std::cell::Cell<()>);

    fn shipped_bytes<C: Serialize + DeserializeOwned>(slots: C) -> bincode::Result<Vec<u8>> {
        crate::encoding::encode(env(slots).value())
    }

    #[test]
    fn numbers_ship_by_value() {
        let k = 3u64;
        let slot = slot!(k, marker);
        assert_eq!(*slot.place() * 2, 6);
        assert_eq!(
            shipped_bytes((slot,)).unwrap(),
            bincode::serialize(&(3u64,)).unwrap()
        );
    }

    #[test]
    fn strings_and_vectors_ship_as_clones_and_the_variable_stays() {
        let stop = vec!["the".to_string()];
        let word = "a";
        let (stop_slot, word_slot) = (slot!(stop, marker), slot!(word, marker));
        let place: &Vec<String> = stop_slot.place();
        let word_place: &&str = word_slot.place();
        assert_eq!((place, *word_place), (&stop, "a"));
        let bytes = shipped_bytes((stop_slot, word_slot)).unwrap();
        let back: (Vec<String>, String) = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, (stop, "a".to_string()));
        let again: (Shipped<Vec<String>>, ShippedStr) = bincode::deserialize(&bytes).unwrap();
        assert_eq!(*again.1.place(), "a");
    }

    #[test]
    fn a_closure_without_captures_ships_and_one_with_captures_names_itself() {
        let double = |x: u64| x * 2;
        let slot = slot!(double, marker);
        assert_eq!((*slot.place())(4), 8);
        assert_eq!(shipped_bytes((slot,)).unwrap(), Vec::<u8>::new());

        let offset = 1u64;
        let add = move |x: u64| x + offset;
        let error = shipped_bytes((slot!(add, marker),))
            .unwrap_err()
            .to_string();
        assert!(error.contains("captures `add`"), "{error}");
    }

    #[test]
    fn values_that_cannot_be_serialized_stay_usable_locally() {
        let shared = std::rc::Rc::new(5);
        let slot = slot!(shared, marker);
        assert_eq!(**slot.place(), 5);
        let error = shipped_bytes((slot,)).unwrap_err().to_string();
        assert!(
            error.contains("captures `shared`") && error.contains("Rc<i32>"),
            "{error}"
        );
    }
}
