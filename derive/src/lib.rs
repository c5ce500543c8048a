//! `#[derive(Record)]` and `#[derive(Messages)]`: a game's declarations written on its own
//! types. The macros only write what a hand-written impl would (the `fields()` declaration and
//! the conversions to and from real values, `tickwire_game::{Record, Messages}`); the runtime
//! descriptor (`tickwire_protocol::schema`) stays the one truth the server and both clients
//! read.
//!
//! A field's declaration comes from its type and a `#[tw(...)]` attribute:
//!
//! | Rust type | needs | declares |
//! |---|---|---|
//! | `bool` | nothing | `Bool` |
//! | `f32`, `f64` | `fixed(min, max, num, den)` (the range `[min, max)` in steps of num/den), `fixed_closed(..)` (`[min, max]`) or `angle(bits)` | `Fixed` / `Angle` |
//! | `Vec2` | the same as `f32` | the same, 2 components |
//! | any integer | `int(min, max)` (inclusive), or `variants("a", "b", ..)` for an index | `Int` / `Enum` |
//! | `NetId` | nothing (or `entity`) | `Entity` |
//!
//! Also: `name = "move"` (the wire name; the Rust name otherwise), and on a replicated kind's
//! field `integrate = "vel"` (a position that follows the velocity field `vel`) or
//! `heading = "vel"` (an angle along it). For `Messages`, each variant of an enum is a message
//! kind named by the variant in snake case (or `#[tw(name = "...")]` on the variant), its fields
//! declared as above; unit variants carry none.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Tokens};
use quote::{format_ident, quote};
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Error, Fields, LitStr, Type, parse_macro_input};

#[proc_macro_derive(Record, attributes(tw))]
pub fn derive_record(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    record(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

#[proc_macro_derive(Messages, attributes(tw))]
pub fn derive_messages(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    messages(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

/// How a Rust value becomes real values and back.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Real,
    Vec2,
    Bool,
    Whole,
    NetId,
}

/// What `#[tw(...)]` says of one field.
#[derive(Default)]
struct Declared {
    name: Option<String>,
    ty: Option<Tokens>,
    predict: Option<(bool, String)>,
    entity: bool,
}

/// One declared field of a struct or variant.
struct FieldDecl {
    ident: syn::Ident,
    wire: String,
    shape: Shape,
    ty: Tokens,
    predict: Option<(bool, String)>,
    span: Span,
}

fn shape_of(ty: &Type) -> Option<Shape> {
    let Type::Path(p) = ty else {
        return None;
    };
    let last = p.path.segments.last()?.ident.to_string();
    Some(match last.as_str() {
        "f32" | "f64" => Shape::Real,
        "Vec2" => Shape::Vec2,
        "bool" => Shape::Bool,
        "NetId" => Shape::NetId,
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => {
            Shape::Whole
        }
        _ => return None,
    })
}

/// A number in an attribute: an optional minus, then an integer or a float literal.
fn number(input: ParseStream) -> syn::Result<f64> {
    let negative = input.peek(syn::Token![-]);
    if negative {
        input.parse::<syn::Token![-]>()?;
    }
    let lit: syn::Lit = input.parse()?;
    let v = match &lit {
        syn::Lit::Int(i) => i.base10_parse::<f64>()?,
        syn::Lit::Float(f) => f.base10_parse::<f64>()?,
        other => return Err(Error::new(other.span(), "expected a number")),
    };
    Ok(if negative { -v } else { v })
}

fn numbers(input: ParseStream, n: usize) -> syn::Result<Vec<f64>> {
    let content;
    syn::parenthesized!(content in input);
    let mut out = Vec::with_capacity(n);
    while !content.is_empty() {
        out.push(number(&content)?);
        if !content.is_empty() {
            content.parse::<syn::Token![,]>()?;
        }
    }
    if out.len() != n {
        return Err(content.error(format!("expected {n} numbers")));
    }
    Ok(out)
}

fn whole(v: f64, span: Span) -> syn::Result<u32> {
    if v < 0.0 || v.fract() != 0.0 || v > u32::MAX as f64 {
        return Err(Error::new(span, "expected a whole number"));
    }
    Ok(v as u32)
}

fn declared(attrs: &[syn::Attribute]) -> syn::Result<Declared> {
    let mut d = Declared::default();
    let ft = quote!(::tickwire_game::protocol::schema::FieldType);
    for attr in attrs.iter().filter(|a| a.path().is_ident("tw")) {
        attr.parse_nested_meta(|meta| {
            let span = meta.path.span();
            let key = meta
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            match key.as_str() {
                "name" => d.name = Some(meta.value()?.parse::<LitStr>()?.value()),
                "integrate" | "heading" => {
                    let from = meta.value()?.parse::<LitStr>()?.value();
                    d.predict = Some((key == "integrate", from));
                }
                "entity" => d.entity = true,
                "fixed" | "fixed_closed" => {
                    let v = numbers(meta.input, 4)?;
                    let (num, den) = (whole(v[2], span)?, whole(v[3], span)?);
                    let (min, max) = (v[0], v[1]);
                    let make = format_ident!("{}", key);
                    d.ty = Some(quote!(#ft::#make(#min, #max, #num, #den)));
                }
                "int" => {
                    let v = numbers(meta.input, 2)?;
                    if v.iter().any(|x| x.fract() != 0.0) {
                        return Err(Error::new(span, "int takes whole bounds"));
                    }
                    let (min, max) = (v[0] as i64, v[1] as i64);
                    d.ty = Some(quote!(#ft::Int { min: #min, max: #max }));
                }
                "angle" => {
                    let bits = whole(numbers(meta.input, 1)?[0], span)?;
                    if !(1..=24).contains(&bits) {
                        return Err(Error::new(span, "an angle takes 1 to 24 bits"));
                    }
                    let bits = bits as u8;
                    d.ty = Some(quote!(#ft::Angle { bits: #bits }));
                }
                "variants" => {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    let names =
                        content.parse_terminated(|p| p.parse::<LitStr>(), syn::Token![,])?;
                    let names: Vec<String> = names.iter().map(LitStr::value).collect();
                    d.ty = Some(quote!(#ft::Enum {
                        variants: ::std::vec![#(::std::string::String::from(#names)),*],
                    }));
                }
                _ => return Err(meta.error("unknown tw attribute")),
            }
            Ok(())
        })?;
    }
    Ok(d)
}

fn field_decls(fields: &Fields) -> syn::Result<Vec<FieldDecl>> {
    let named = match fields {
        Fields::Named(n) => &n.named,
        Fields::Unit => return Ok(Vec::new()),
        Fields::Unnamed(u) => {
            return Err(Error::new(u.span(), "declared fields need names"));
        }
    };
    let ft = quote!(::tickwire_game::protocol::schema::FieldType);
    named
        .iter()
        .map(|f| {
            let ident = f.ident.clone().expect("named");
            let span = f.span();
            let shape = shape_of(&f.ty).ok_or_else(|| {
                Error::new(
                    f.ty.span(),
                    "a declared field is bool, f32, f64, Vec2, an integer or NetId",
                )
            })?;
            let d = declared(&f.attrs)?;
            let ty = match (shape, d.ty) {
                (Shape::Bool, None) => quote!(#ft::Bool),
                (Shape::NetId, None) => quote!(#ft::Entity),
                (_, None) if d.entity => quote!(#ft::Entity),
                (Shape::Bool | Shape::NetId, Some(_)) => {
                    return Err(Error::new(span, "this type declares itself"));
                }
                (_, Some(ty)) => ty,
                (_, None) => {
                    return Err(Error::new(
                        span,
                        "declare its precision: #[tw(fixed(min, max, num, den))], \
                         #[tw(fixed_closed(..))], #[tw(angle(bits))], #[tw(int(min, max))] \
                         or #[tw(variants(..))]",
                    ));
                }
            };
            Ok(FieldDecl {
                wire: d.name.unwrap_or_else(|| ident.to_string()),
                ident,
                shape,
                ty,
                predict: d.predict,
                span,
            })
        })
        .collect()
}

/// `fields()`'s body: the declarations, predictions resolved to field indices.
fn fields_body(decls: &[FieldDecl]) -> syn::Result<Tokens> {
    let schema = quote!(::tickwire_game::protocol::schema);
    let mut items = Vec::new();
    for f in decls {
        let (wire, ty) = (&f.wire, &f.ty);
        let dims: u8 = if f.shape == Shape::Vec2 { 2 } else { 1 };
        let mut item = quote!(#schema::Field::new(#wire, #ty, #dims));
        if let Some((integrate, from)) = &f.predict {
            let index = decls
                .iter()
                .position(|g| &g.wire == from || g.ident == from.as_str())
                .ok_or_else(|| Error::new(f.span, format!("no field {from:?} to predict from")))?
                as u16;
            let p = if *integrate {
                quote!(#schema::Predict::Integrate(#index))
            } else {
                quote!(#schema::Predict::Heading(#index))
            };
            item = quote!(#item.predicted(#p));
        }
        items.push(item);
    }
    Ok(quote!(::std::vec![#(#items),*]))
}

/// Pushes each field's values from `access(field)` (an expression of the field's value).
fn write_values(decls: &[FieldDecl], access: impl Fn(&syn::Ident) -> Tokens) -> Tokens {
    let pushes = decls.iter().map(|f| {
        let v = access(&f.ident);
        match f.shape {
            Shape::Real => quote!(out.push(#v as f64);),
            Shape::Vec2 => quote!(out.push(#v.x as f64); out.push(#v.y as f64);),
            Shape::Bool => quote!(out.push(if #v { 1.0 } else { 0.0 });),
            Shape::Whole => quote!(out.push(#v as f64);),
            Shape::NetId => quote!(out.push(#v.0 as f64);),
        }
    });
    quote!(#(#pushes)*)
}

/// `ident: value` for each field, read from `values`.
fn read_values(decls: &[FieldDecl], types: &[&Type]) -> Vec<Tokens> {
    decls
        .iter()
        .zip(types)
        .map(|(f, ty)| {
            let ident = &f.ident;
            let v = match f.shape {
                Shape::Real => quote!(values.f64() as #ty),
                Shape::Vec2 => quote!(values.vec2()),
                Shape::Bool => quote!(values.bool()),
                Shape::Whole => quote!(values.int() as #ty),
                Shape::NetId => quote!(::tickwire_game::protocol::NetId(values.int() as u32)),
            };
            quote!(#ident: #v)
        })
        .collect()
}

fn field_types(fields: &Fields) -> Vec<&Type> {
    fields.iter().map(|f| &f.ty).collect()
}

fn record(input: &DeriveInput) -> syn::Result<Tokens> {
    let Data::Struct(data) = &input.data else {
        return Err(Error::new(
            input.span(),
            "Record is derived for a struct (Messages for an enum)",
        ));
    };
    let name = &input.ident;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let decls = field_decls(&data.fields)?;
    let fields = fields_body(&decls)?;
    let write = write_values(&decls, |i| quote!(self.#i));
    let reads = read_values(&decls, &field_types(&data.fields));
    let build = match &data.fields {
        Fields::Unit => quote!(#name),
        _ => quote!(#name { #(#reads),* }),
    };
    Ok(quote! {
        impl #impl_g ::tickwire_game::Record for #name #ty_g #where_g {
            fn fields() -> &'static [::tickwire_game::protocol::schema::Field] {
                static FIELDS: ::std::sync::OnceLock<
                    ::std::vec::Vec<::tickwire_game::protocol::schema::Field>,
                > = ::std::sync::OnceLock::new();
                FIELDS.get_or_init(|| #fields)
            }
            #[allow(unused_variables)]
            fn write(&self, out: &mut ::std::vec::Vec<f64>) {
                #write
            }
            #[allow(unused_variables)]
            fn read(values: &mut ::tickwire_game::Values<'_>) -> Self {
                #build
            }
        }
    })
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn messages(input: &DeriveInput) -> syn::Result<Tokens> {
    let Data::Enum(data) = &input.data else {
        return Err(Error::new(
            input.span(),
            "Messages is derived for an enum (Record for a struct)",
        ));
    };
    let name = &input.ident;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let schema = quote!(::tickwire_game::protocol::schema);
    let (mut kinds, mut writes, mut reads) = (Vec::new(), Vec::new(), Vec::new());
    for (index, v) in data.variants.iter().enumerate() {
        let index = u16::try_from(index).map_err(|_| Error::new(v.span(), "too many messages"))?;
        let vname = &v.ident;
        let wire = declared(&v.attrs)?
            .name
            .unwrap_or_else(|| snake(&vname.to_string()));
        let decls = field_decls(&v.fields)?;
        if let Some(f) = decls.iter().find(|f| f.predict.is_some()) {
            return Err(Error::new(f.span, "a message's fields are not predicted"));
        }
        let fields = fields_body(&decls)?;
        kinds.push(quote!(#schema::Kind::new(#wire, #fields)));
        let idents: Vec<&syn::Ident> = decls.iter().map(|f| &f.ident).collect();
        let write = write_values(&decls, |i| quote!((*#i)));
        let pattern = match &v.fields {
            Fields::Unit => quote!(#name::#vname),
            _ => quote!(#name::#vname { #(#idents),* }),
        };
        writes.push(quote!(#pattern => { #write #index }));
        let fields_read = read_values(&decls, &field_types(&v.fields));
        let build = match &v.fields {
            Fields::Unit => quote!(#name::#vname),
            _ => quote!(#name::#vname { #(#fields_read),* }),
        };
        reads.push(quote!(#index => ::std::option::Option::Some(#build),));
    }
    let write_body = if writes.is_empty() {
        quote!(match *self {})
    } else {
        quote!(match self { #(#writes)* })
    };
    Ok(quote! {
        impl #impl_g ::tickwire_game::Messages for #name #ty_g #where_g {
            fn kinds() -> &'static [#schema::Kind] {
                static KINDS: ::std::sync::OnceLock<::std::vec::Vec<#schema::Kind>> =
                    ::std::sync::OnceLock::new();
                KINDS.get_or_init(|| ::std::vec![#(#kinds),*])
            }
            #[allow(unused_variables)]
            fn write(&self, out: &mut ::std::vec::Vec<f64>) -> u16 {
                #write_body
            }
            #[allow(unused_variables)]
            fn read(kind: u16, values: &mut ::tickwire_game::Values<'_>) -> ::std::option::Option<Self> {
                match kind {
                    #(#reads)*
                    _ => ::std::option::Option::None,
                }
            }
        }
    })
}
