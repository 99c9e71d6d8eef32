//! `#[derive(PagedData)]`: spillway's paged arrangements for your own structs and enums, with
//! no hand-written codec. Use it through `spillway::PagedData` or `spillway_trace::PagedData`
//! (the trait and the derive share the name, as serde's `Serialize` does).
//!
//! Invariant: the generated `PagedData` impl encodes the fields in declaration order through
//! spillway's part codec (`FieldWriter`/`FieldReader`: fixed-width fields at fixed offsets,
//! a length before each variable-length field but the last; an enum is a tag byte, the
//! variant's index, then that variant's fields), so it round-trips, and its item orders as
//! the *derived* `Ord` of the type does (fields lexicographically, variants in declaration
//! order). A type whose `Ord` is not the derived one must not use this derive.
//!
//! Two item forms, chosen per type:
//! - **by value** (`Item<'a> = Self`; the type must be `Copy`): when every field's type is
//!   syntactically fixed-width (integers, `bool`, `char`, `()`, `Duration`, `Present`, and
//!   tuples, arrays, `Option`, `Wrapping`, `Reverse` and `Product` of those), when the type
//!   has no fields, or when asked with `#[paged(by_value)]` (for fields of your own by-value
//!   types). Fixed-width by-value types are read in place from a pinned body, as `u64` is.
//! - **borrowed** otherwise, or with `#[paged(borrowed)]`: a generated `FooRef<'a>` of the
//!   same shape (same field names, same variants) whose fields are the fields' items
//!   (`&'a str` for a `String`, by value for a `u64`), with the visibility of `Foo` and of
//!   each field, and `Copy`, `Ord`, `Debug`. Name it with `#[paged(item = "FooView")]`.
//!
//! `#[paged(crate = "path")]` names the crate that provides `PagedData` when it is neither
//! `spillway_trace` (the `PagedData` derive's default) nor `spillway` (the facade's).
//! Type parameters get a `PagedData` bound; lifetime parameters are not supported (paged data
//! is `'static`). Enums have at most 256 variants.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{
    parse_macro_input, Data, DeriveInput, Fields, GenericParam, Generics, Ident, Member, Type,
};

/// Derives `spillway_trace::PagedData` (see the crate docs).
#[proc_macro_derive(PagedData, attributes(paged))]
pub fn derive_paged_data(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(input, quote!(::spillway_trace))
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

/// Derives `spillway::PagedData` (the facade's re-export of [`PagedData`](derive@PagedData)).
#[doc(hidden)]
#[proc_macro_derive(SpillwayPagedData, attributes(paged))]
pub fn derive_spillway_paged_data(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(input, quote!(::spillway))
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

/// What `#[paged(...)]` asked for.
#[derive(Default)]
struct Options {
    /// `Some(true)` for `by_value`, `Some(false)` for `borrowed`.
    by_value: Option<bool>,
    krate: Option<syn::Path>,
    item: Option<Ident>,
}

fn options(input: &DeriveInput) -> syn::Result<Options> {
    let mut out = Options::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("paged")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("by_value") {
                out.by_value = Some(true);
            } else if meta.path.is_ident("borrowed") {
                out.by_value = Some(false);
            } else if meta.path.is_ident("crate") {
                let s: syn::LitStr = meta.value()?.parse()?;
                out.krate = Some(s.parse()?);
            } else if meta.path.is_ident("item") {
                let s: syn::LitStr = meta.value()?.parse()?;
                out.item = Some(s.parse()?);
            } else {
                return Err(meta.error(
                    "expected `by_value`, `borrowed`, `crate = \"..\"` or `item = \"..\"`",
                ));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// One struct, or one enum variant: its fields as members and types.
struct Shape {
    fields: Fields,
}

impl Shape {
    fn members(&self) -> Vec<Member> {
        self.fields.members().collect()
    }
    fn types(&self) -> Vec<&Type> {
        self.fields.iter().map(|f| &f.ty).collect()
    }
    /// Bindings `__f0, __f1, ...` for the fields, in order.
    fn bindings(&self) -> Vec<Ident> {
        (0..self.fields.len())
            .map(|i| format_ident!("__f{}", i))
            .collect()
    }
    /// `{ m0: b0, m1: b1 }`: a pattern or constructor body binding the fields.
    fn bind(&self) -> TokenStream {
        let (m, b) = (self.members(), self.bindings());
        quote!({ #(#m: #b),* })
    }
    /// `{ m0: e0, m1: e1 }` for these expressions, in field order.
    fn build(&self, exprs: &[TokenStream]) -> TokenStream {
        let m = self.members();
        quote!({ #(#m: #exprs),* })
    }
}

fn expand(input: DeriveInput, default_root: TokenStream) -> syn::Result<TokenStream> {
    let opts = options(&input)?;
    let root = match &opts.krate {
        Some(path) => quote!(#path),
        None => default_root,
    };
    if let Some(l) = input.generics.lifetimes().next() {
        return Err(syn::Error::new_spanned(
            l,
            "PagedData: lifetime parameters are not supported (paged data is 'static)",
        ));
    }
    let name = &input.ident;
    let (shapes, variants): (Vec<Shape>, Option<Vec<Ident>>) = match &input.data {
        Data::Struct(s) => (
            vec![Shape {
                fields: s.fields.clone(),
            }],
            None,
        ),
        Data::Enum(e) => {
            if e.variants.len() > 256 {
                return Err(syn::Error::new_spanned(
                    name,
                    "PagedData: an enum has at most 256 variants (its tag is a byte)",
                ));
            }
            let shapes = e
                .variants
                .iter()
                .map(|v| Shape {
                    fields: v.fields.clone(),
                })
                .collect();
            (
                shapes,
                Some(e.variants.iter().map(|v| v.ident.clone()).collect()),
            )
        }
        Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "PagedData cannot be derived for unions",
            ))
        }
    };
    let no_fields = shapes.iter().all(|s| s.fields.is_empty());
    let by_value = no_fields
        || opts.by_value.unwrap_or_else(|| {
            shapes
                .iter()
                .all(|s| s.types().into_iter().all(known_fixed))
        });
    let cx = Cx {
        name: name.clone(),
        generics: bounded(&input.generics, &root),
        root,
        shapes,
        variants,
        item_name: opts
            .item
            .unwrap_or_else(|| Ident::new(&format!("{name}Ref"), Span::call_site())),
        vis: input.vis.clone(),
        input: &input,
    };
    Ok(if by_value {
        cx.by_value()
    } else {
        cx.borrowed()
    })
}

/// The generics with a `PagedData` bound on every type parameter.
fn bounded(generics: &Generics, root: &TokenStream) -> Generics {
    let mut g = generics.clone();
    for p in &mut g.params {
        if let GenericParam::Type(t) = p {
            t.bounds.push(syn::parse_quote!(#root::PagedData));
        }
    }
    g
}

/// Whether a field type is fixed-width by its spelling alone (see the crate docs).
fn known_fixed(ty: &Type) -> bool {
    match ty {
        Type::Tuple(t) => t.elems.iter().all(known_fixed),
        Type::Array(a) => known_fixed(&a.elem),
        Type::Paren(p) => known_fixed(&p.elem),
        Type::Group(g) => known_fixed(&g.elem),
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return false;
            };
            let name = last.ident.to_string();
            match &last.arguments {
                syn::PathArguments::None => matches!(
                    name.as_str(),
                    "u8" | "u16"
                        | "u32"
                        | "u64"
                        | "u128"
                        | "usize"
                        | "i8"
                        | "i16"
                        | "i32"
                        | "i64"
                        | "i128"
                        | "isize"
                        | "bool"
                        | "char"
                        | "Duration"
                        | "Present"
                ),
                syn::PathArguments::AngleBracketed(args) => {
                    matches!(name.as_str(), "Option" | "Wrapping" | "Reverse" | "Product")
                        && args.args.iter().all(|a| match a {
                            syn::GenericArgument::Type(t) => known_fixed(t),
                            _ => false,
                        })
                }
                syn::PathArguments::Parenthesized(_) => false,
            }
        }
        _ => false,
    }
}

/// Everything the generated code needs.
struct Cx<'i> {
    root: TokenStream,
    name: Ident,
    generics: Generics,
    shapes: Vec<Shape>,
    /// The variants' names, for an enum.
    variants: Option<Vec<Ident>>,
    item_name: Ident,
    vis: syn::Visibility,
    input: &'i DeriveInput,
}

impl Cx<'_> {
    /// `WIDTH` of one shape: `Some(sum)` when all its fields are fixed-width.
    fn shape_width(&self, shape: &Shape) -> TokenStream {
        let root = &self.root;
        let types = shape.types();
        quote!(#root::__derive::fixed_width(&[#(<#types as #root::PagedData>::WIDTH),*]))
    }

    fn width(&self) -> TokenStream {
        let root = &self.root;
        match &self.variants {
            None => self.shape_width(&self.shapes[0]),
            Some(_) => {
                let widths = self.shapes.iter().map(|s| self.shape_width(s));
                quote!(match #root::__derive::widest(&[#(#widths),*]) {
                    ::core::option::Option::Some(w) => ::core::option::Option::Some(1 + w),
                    ::core::option::Option::None => ::core::option::Option::None,
                })
            }
        }
    }

    /// The path of shape `i` under `ty` (`Foo` or `Foo::Variant`).
    fn path(&self, ty: &TokenStream, i: usize) -> TokenStream {
        match &self.variants {
            None => quote!(#ty),
            Some(v) => {
                let v = &v[i];
                quote!(#ty::#v)
            }
        }
    }

    /// `encoded_len`, `encode` and `decode`: the same for both item forms.
    fn codec(&self) -> TokenStream {
        let root = &self.root;
        let d = quote!(#root::__derive);
        let name = &self.name;
        let mut len_arms = Vec::new();
        let mut enc_arms = Vec::new();
        let mut dec_arms = Vec::new();
        for (i, shape) in self.shapes.iter().enumerate() {
            let path = self.path(&quote!(Self), i);
            let bind = shape.bind();
            let b = shape.bindings();
            let n = shape.fields.len();
            let types = shape.types();
            let decoded: Vec<TokenStream> =
                types.iter().map(|t| quote!(__r.decode::<#t>())).collect();
            let build = shape.build(&decoded);
            match &self.variants {
                None => {
                    len_arms
                        .push(quote!(#path #bind => #d::FieldsLen::new(#n) #(.add(#b))* .total()));
                    enc_arms.push(
                        quote!(#path #bind => { #d::FieldWriter::new(__out, #n) #(.put(#b))*; }),
                    );
                    dec_arms.push(
                        quote!({ let mut __r = #d::FieldReader::new(__bytes, #n); #path #build }),
                    );
                }
                Some(_) => {
                    let tag = i as u8;
                    len_arms.push(
                        quote!(#path #bind => 1 + #d::FieldsLen::new(#n) #(.add(#b))* .total()),
                    );
                    enc_arms.push(quote!(#path #bind => {
                        __out[0] = #tag;
                        #d::FieldWriter::new(&mut __out[1..], #n) #(.put(#b))* .pad();
                    }));
                    dec_arms.push(quote!(#tag => { let mut __r = #d::FieldReader::new(&__bytes[1..], #n); #path #build }));
                }
            }
        }
        let decode = match &self.variants {
            None => quote!(#(#dec_arms)*),
            Some(_) => {
                let msg = format!("spillway: a paged {name} reads back with tag {{}}");
                quote!(match __bytes[0] { #(#dec_arms)* __t => panic!(#msg, __t) })
            }
        };
        quote! {
            #[inline]
            fn encoded_len(&self) -> usize {
                match <Self as #root::PagedData>::WIDTH {
                    ::core::option::Option::Some(w) => w,
                    ::core::option::Option::None => match self { #(#len_arms,)* },
                }
            }
            #[inline]
            fn encode(&self, __out: &mut [u8]) {
                match self { #(#enc_arms)* }
            }
            #[inline]
            fn decode(__bytes: &[u8]) -> Self {
                #decode
            }
        }
    }

    /// `read_item`: each field read by value (`Some` only when the type is fixed-width);
    /// `wrap` turns a field's item into what the item type holds.
    fn read_item(
        &self,
        item_ty: &TokenStream,
        wrap: impl Fn(&Type, TokenStream) -> TokenStream,
    ) -> TokenStream {
        let root = &self.root;
        let d = quote!(#root::__derive);
        let mut arms = Vec::new();
        for (i, shape) in self.shapes.iter().enumerate() {
            let path = self.path(item_ty, i);
            let n = shape.fields.len();
            let read: Vec<TokenStream> = shape
                .types()
                .into_iter()
                .map(|t| wrap(t, quote!(__r.read_item::<#t>()?)))
                .collect();
            let build = shape.build(&read);
            match &self.variants {
                None => arms.push(
                    quote!({ let mut __r = #d::FieldReader::new(__bytes, #n); #path #build }),
                ),
                Some(_) => {
                    let tag = i as u8;
                    arms.push(quote!(#tag => { let mut __r = #d::FieldReader::new(&__bytes[1..], #n); #path #build }));
                }
            }
        }
        let body = match &self.variants {
            None => quote!(#(#arms)*),
            Some(_) => {
                quote!(match __bytes[0] { #(#arms)* _ => return ::core::option::Option::None })
            }
        };
        quote! {
            #[inline]
            fn read_item<'__a>(__bytes: &[u8]) -> ::core::option::Option<Self::Item<'__a>> {
                <Self as #root::PagedData>::WIDTH?;
                ::core::option::Option::Some(#body)
            }
        }
    }

    /// The impl for a by-value type (`Item<'a> = Self`).
    fn by_value(&self) -> TokenStream {
        let root = &self.root;
        let name = &self.name;
        let (ig, tg, wc) = self.generics.split_for_impl();
        let width = self.width();
        let codec = self.codec();
        let read_item = self.read_item(
            &quote!(Self),
            |t, e| quote!(<#t as #root::PagedData>::into_owned(#e)),
        );
        quote! {
            #[automatically_derived]
            #[allow(unused_mut, unused_variables, clippy::all)]
            impl #ig #root::PagedData for #name #tg #wc {
                type Item<'__a> = Self;
                type Container = #root::__derive::ItemColumn<Self>;
                type Seq = #root::__derive::Elements;
                const WIDTH: ::core::option::Option<usize> = #width;

                #[inline(always)]
                fn item(&self) -> Self {
                    *self
                }
                #codec
                #read_item
                #[inline]
                fn borrow(__bytes: &[u8]) -> Self {
                    <Self as #root::PagedData>::decode(__bytes)
                }
                #[inline(always)]
                fn reborrow<'__b, '__a: '__b>(item: Self) -> Self {
                    item
                }
                #[inline(always)]
                fn into_owned(item: Self) -> Self {
                    item
                }
            }
        }
    }

    /// The generated item type and the impl for a borrowed type.
    fn borrowed(&self) -> TokenStream {
        let root = &self.root;
        let name = &self.name;
        let item = &self.item_name;
        let vis = &self.vis;
        let (ig, tg, wc) = self.generics.split_for_impl();
        // The item type's generics: `'__a` then the type's own.
        let mut ref_generics = self.generics.clone();
        ref_generics.params.insert(0, syn::parse_quote!('__a));
        let (rig, _, rwc) = ref_generics.split_for_impl();
        let type_args: Vec<&Ident> = self.generics.type_params().map(|t| &t.ident).collect();
        let item_at = |l: TokenStream| quote!(#item<#l, #(#type_args),*>);
        let item_a = item_at(quote!('__a));
        let item_b = item_at(quote!('__b));

        // The item type's declaration: the same shape with items for fields.
        let field_ty = |f: &syn::Field| {
            let ty = &f.ty;
            let fvis = &f.vis;
            let fname = f.ident.as_ref().map(|i| quote!(#i:));
            quote!(#fvis #fname <#ty as #root::PagedData>::Item<'__a>)
        };
        let doc = format!(
            "The borrowed item of [`{name}`]: its fields' items (generated by `#[derive(PagedData)]`), ordered as `{name}`'s derived `Ord`."
        );
        let body_of = |fields: &Fields| {
            let fs = fields.iter().map(field_ty);
            match fields {
                Fields::Named(_) => quote!({ #(#fs),* }),
                Fields::Unnamed(_) => quote!(( #(#fs),* )),
                Fields::Unit => quote!(),
            }
        };
        let decl = match &self.input.data {
            Data::Struct(s) => {
                let body = body_of(&s.fields);
                match &s.fields {
                    Fields::Named(_) => quote!(#vis struct #item #ref_generics #rwc #body),
                    _ => quote!(#vis struct #item #ref_generics #body #rwc;),
                }
            }
            Data::Enum(e) => {
                let vs = e.variants.iter().map(|v| {
                    let vi = &v.ident;
                    let body = body_of(&v.fields);
                    quote!(#vi #body)
                });
                quote!(#vis enum #item #ref_generics #rwc { #(#vs),* })
            }
            Data::Union(_) => unreachable!("rejected above"),
        };
        let decl = quote!(#[doc = #doc] #[allow(missing_docs)] #decl);

        let item_ty = quote!(#item);
        let mut item_arms = Vec::new();
        let mut borrow_arms = Vec::new();
        let mut reborrow_arms = Vec::new();
        let mut owned_arms = Vec::new();
        let mut eq_arms = Vec::new();
        let mut cmp_arms = Vec::new();
        let mut idx_arms = Vec::new();
        let mut dbg_arms = Vec::new();
        let d = quote!(#root::__derive);
        for (i, shape) in self.shapes.iter().enumerate() {
            let own = self.path(&quote!(Self), i);
            let it = self.path(&item_ty, i);
            let bind = shape.bind();
            let b = shape.bindings();
            let types = shape.types();
            let n = shape.fields.len();
            let items: Vec<TokenStream> = b
                .iter()
                .map(|b| quote!(#root::PagedData::item(#b)))
                .collect();
            item_arms.push({
                let build = shape.build(&items);
                quote!(#own #bind => #it #build)
            });
            let borrowed: Vec<TokenStream> =
                types.iter().map(|t| quote!(__r.item::<#t>())).collect();
            let build = shape.build(&borrowed);
            borrow_arms.push(match &self.variants {
                None => quote!({ let mut __r = #d::FieldReader::new(__bytes, #n); #it #build }),
                Some(_) => {
                    let tag = i as u8;
                    quote!(#tag => { let mut __r = #d::FieldReader::new(&__bytes[1..], #n); #it #build })
                }
            });
            let re: Vec<TokenStream> = types
                .iter()
                .zip(&b)
                .map(|(t, b)| quote!(<#t as #root::PagedData>::reborrow(#b)))
                .collect();
            let build = shape.build(&re);
            reborrow_arms.push(quote!(#it #bind => #it #build));
            let ow: Vec<TokenStream> = types
                .iter()
                .zip(&b)
                .map(|(t, b)| quote!(<#t as #root::PagedData>::into_owned(#b)))
                .collect();
            let build = shape.build(&ow);
            owned_arms.push(quote!(#it #bind => #own #build));
            // Comparisons: both sides of the same shape, fields in order.
            let m = shape.members();
            let l: Vec<Ident> = (0..n).map(|j| format_ident!("__l{}", j)).collect();
            let r: Vec<Ident> = (0..n).map(|j| format_ident!("__r{}", j)).collect();
            let lp = quote!(#it { #(#m: #l),* });
            let rp = quote!(#it { #(#m: #r),* });
            eq_arms.push(quote!((#lp, #rp) => true #(&& #l == #r)*));
            cmp_arms.push(quote!((#lp, #rp) => ::core::cmp::Ordering::Equal #(.then_with(|| ::core::cmp::Ord::cmp(#l, #r)))*));
            idx_arms.push(quote!(#it { .. } => #i));
            let label = match &self.variants {
                None => item.to_string(),
                Some(v) => v[i].to_string(),
            };
            dbg_arms.push(match &shape.fields {
                Fields::Named(_) => {
                    let names: Vec<String> = m
                        .iter()
                        .map(|m| match m {
                            Member::Named(n) => n.to_string(),
                            Member::Unnamed(i) => i.index.to_string(),
                        })
                        .collect();
                    quote!(#it #bind => __f.debug_struct(#label) #(.field(#names, #b))* .finish())
                }
                Fields::Unnamed(_) => {
                    quote!(#it #bind => __f.debug_tuple(#label) #(.field(#b))* .finish())
                }
                Fields::Unit => quote!(#it #bind => __f.write_str(#label)),
            });
        }
        let borrow_body = match &self.variants {
            None => quote!(#(#borrow_arms)*),
            Some(_) => {
                let msg = format!("spillway: a paged {name} reads back with tag {{}}");
                quote!(match __bytes[0] { #(#borrow_arms)* __t => panic!(#msg, __t) })
            }
        };
        let width = self.width();
        let codec = self.codec();
        let read_item = self.read_item(&item_ty, |_t, e| e);
        let out = quote! {
            #decl

            #[automatically_derived]
            impl #rig ::core::clone::Clone for #item_a #rwc {
                #[inline(always)]
                fn clone(&self) -> Self { *self }
            }
            #[automatically_derived]
            impl #rig ::core::marker::Copy for #item_a #rwc {}
            #[automatically_derived]
            impl #rig ::core::cmp::PartialEq for #item_a #rwc {
                #[allow(unreachable_patterns)]
                fn eq(&self, __other: &Self) -> bool {
                    match (self, __other) { #(#eq_arms,)* _ => false }
                }
            }
            #[automatically_derived]
            impl #rig ::core::cmp::Eq for #item_a #rwc {}
            #[automatically_derived]
            impl #rig ::core::cmp::PartialOrd for #item_a #rwc {
                fn partial_cmp(&self, __other: &Self) -> ::core::option::Option<::core::cmp::Ordering> {
                    ::core::option::Option::Some(::core::cmp::Ord::cmp(self, __other))
                }
            }
            #[automatically_derived]
            impl #rig ::core::cmp::Ord for #item_a #rwc {
                #[allow(unreachable_patterns)]
                fn cmp(&self, __other: &Self) -> ::core::cmp::Ordering {
                    let __idx = |__x: &Self| -> usize { match __x { #(#idx_arms,)* } };
                    match (self, __other) {
                        #(#cmp_arms,)*
                        _ => ::core::cmp::Ord::cmp(&__idx(self), &__idx(__other)),
                    }
                }
            }
            #[automatically_derived]
            impl #rig ::core::fmt::Debug for #item_a #rwc {
                fn fmt(&self, __f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    match self { #(#dbg_arms,)* }
                }
            }

            #[automatically_derived]
            #[allow(unused_mut, unused_variables, clippy::all)]
            impl #ig #root::PagedData for #name #tg #wc {
                type Item<'__a> = #item_a;
                type Container = #root::__derive::ItemColumn<Self>;
                type Seq = #root::__derive::Elements;
                const WIDTH: ::core::option::Option<usize> = #width;

                #[inline]
                fn item(&self) -> Self::Item<'_> {
                    match self { #(#item_arms,)* }
                }
                #codec
                #read_item
                #[inline]
                fn borrow(__bytes: &[u8]) -> Self::Item<'_> {
                    #borrow_body
                }
                #[inline]
                fn reborrow<'__b, '__a: '__b>(item: #item_a) -> #item_b {
                    match item { #(#reborrow_arms,)* }
                }
                #[inline]
                fn into_owned(item: Self::Item<'_>) -> Self {
                    match item { #(#owned_arms,)* }
                }
            }
        };
        out
    }
}
