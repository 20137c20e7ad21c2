//! Which service and method a request's method id names.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::id_hash::IdHasher;
use super::service::{MethodNames, Service};
use crate::wire::frame::flags;
use crate::wire::kind::CallKind;
use crate::wire::route::method_id;

/// A method a session serves.
pub(crate) struct Route {
    /// The service it belongs to.
    pub service: Arc<dyn Service>,
    /// Its service's and its own wire names.
    pub names: Arc<MethodNames>,
    /// What its calls send and answer, when its service describes it (a
    /// service written by hand may not).
    pub shape: Option<Shape>,
}

/// What a method's calls send and answer, as its description says: the
/// stream flags its requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// `STREAM_OUT` and `STREAM_IN`, as the method's kind wants them.
    streams: u8,
}

impl Shape {
    fn of(kind: CallKind) -> Shape {
        let mut streams = 0;
        if kind.answers_stream() {
            streams |= flags::STREAM_OUT;
        }
        if kind.sends_stream() {
            streams |= flags::STREAM_IN;
        }
        Shape { streams }
    }

    /// Why a request with `request_flags` does not fit the method, if it
    /// does not: its answer or its caller's stream is not what the method
    /// has. Such a request is answered with code 3 before anything runs.
    #[inline]
    pub(crate) fn misfit(self, request_flags: u8) -> Option<&'static str> {
        let asked = request_flags & (flags::STREAM_OUT | flags::STREAM_IN);
        if asked == self.streams {
            return None;
        }
        let differs = asked ^ self.streams;
        Some(if differs & flags::STREAM_OUT != 0 {
            if asked & flags::STREAM_OUT == 0 {
                misfit::ANSWERS_STREAM
            } else {
                misfit::ANSWERS_VALUE
            }
        } else if asked & flags::STREAM_IN == 0 {
            misfit::TAKES_STREAM
        } else {
            misfit::TAKES_NONE
        })
    }
}

/// What a call that does not fit its method is told (code 3).
pub(crate) mod misfit {
    /// A call for one value, to a method that streams.
    pub(crate) const ANSWERS_STREAM: &str = "the method answers with a stream, but the call \
         asked for one value (do both sides use the same trait?)";
    /// A call for a stream, to a method that answers one value.
    pub(crate) const ANSWERS_VALUE: &str = "the method answers with one value, but the call \
         asked for a stream (do both sides use the same trait?)";
    /// A call without a stream, to a method that takes one.
    pub(crate) const TAKES_STREAM: &str = "the method takes a stream, but the call sends none \
         (do both sides use the same trait?)";
    /// A call with a stream, to a method that takes none.
    pub(crate) const TAKES_NONE: &str = "the call sends a stream, but the method takes none \
         (do both sides use the same trait?)";
}

/// The shapes of `service`'s methods, by wire name, as it describes them.
fn shapes(service: &dyn Service) -> HashMap<String, Shape> {
    service
        .descriptor()
        .map(|descriptor| {
            descriptor
                .methods
                .into_iter()
                .map(|method| (method.name, Shape::of(method.kind)))
                .collect()
        })
        .unwrap_or_default()
}

/// The methods a session serves, by method id; cheap to clone.
///
/// Hashed with one multiplication: the peer chooses the ids it looks up,
/// but never what the table holds (fixed when the services are added, and
/// ids that are themselves hashes), so it can make no chain longer.
#[derive(Clone, Default)]
pub(crate) struct Routes {
    by_id: Arc<HashMap<u32, Route, BuildHasherDefault<IdHasher>>>,
    /// The services' names, for people.
    services: Arc<[String]>,
}

impl Routes {
    /// Every method of `services`; fails when two of them have the same id
    /// (a request could not say which it calls).
    pub(crate) fn new<'a>(
        services: impl IntoIterator<Item = (&'a String, &'a Arc<dyn Service>)>,
    ) -> Result<Self, String> {
        let mut by_id: HashMap<u32, Route, BuildHasherDefault<IdHasher>> = HashMap::default();
        let mut names = Vec::new();
        for (name, service) in services {
            names.push(name.clone());
            let shapes = shapes(service.as_ref());
            for method in service.methods() {
                let id = method_id(name, method);
                let route = Route {
                    service: Arc::clone(service),
                    names: Arc::new(MethodNames::new(name, method)),
                    shape: shapes.get(*method).copied(),
                };
                if let Some(other) = by_id.insert(id, route) {
                    let other = &other.names;
                    if (other.service(), other.method()) == (name.as_str(), *method) {
                        return Err(format!(
                            "service `{name}` lists its method `{method}` twice"
                        ));
                    }
                    return Err(format!(
                        "methods `{}.{}` and `{name}.{method}` have the same method id ({id:#010x}); give one a different wire name with #[rpc(name = \"...\")]",
                        other.service(),
                        other.method()
                    ));
                }
            }
        }
        names.sort();
        Ok(Routes {
            by_id: Arc::new(by_id),
            services: names.into(),
        })
    }

    /// The method with id `id`.
    pub(crate) fn get(&self, id: u32) -> Option<&Route> {
        self.by_id.get(&id)
    }

    /// Every method: its id, and its service's and its own wire names.
    #[cfg(feature = "nats")]
    pub(crate) fn methods(&self) -> impl Iterator<Item = (u32, &str, &str)> {
        self.by_id
            .iter()
            .map(|(id, route)| (*id, route.names.service(), route.names.method()))
    }

    /// Whether there is no service.
    pub(crate) fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The services' names, sorted.
    pub(crate) fn service_names(&self) -> &[String] {
        &self.services
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::Routes;
    use crate::session::service::{Request, Service, ServiceFuture};
    use crate::wire::route::method_id;

    struct Named(&'static str, &'static [&'static str]);

    impl Service for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn methods(&self) -> &[&str] {
            self.1
        }
        fn call(&self, _: Request) -> ServiceFuture {
            Box::pin(std::future::ready(Err(crate::RpcError::ShuttingDown)))
        }
    }

    fn services(list: Vec<Named>) -> HashMap<String, Arc<dyn Service>> {
        list.into_iter()
            .map(|s| (s.0.to_owned(), Arc::new(s) as Arc<dyn Service>))
            .collect()
    }

    #[test]
    fn every_method_is_found_by_its_id() {
        let routes = Routes::new(&services(vec![
            Named("Math", &["add", "sub"]),
            Named("Echo", &["echo"]),
        ]))
        .unwrap();
        for (service, method) in [("Math", "add"), ("Math", "sub"), ("Echo", "echo")] {
            let route = routes.get(method_id(service, method)).unwrap();
            assert_eq!(
                (route.names.service(), route.names.method()),
                (service, method)
            );
            assert_eq!(route.service.name(), service);
        }
        assert!(routes.get(method_id("Math", "echo")).is_none());
        assert_eq!(routes.service_names(), ["Echo", "Math"]);
    }

    #[test]
    fn colliding_ids_are_refused() {
        // Two names whose ids collide (found by a search).
        let (a, b) = ("m_e9f9bffb", "m_ed748bab");
        assert_eq!(method_id("S", a), method_id("S", b));
        let error = Routes::new(&services(vec![Named("S", &["m_e9f9bffb", "m_ed748bab"])]))
            .err()
            .unwrap();
        assert!(error.contains("the same method id"), "{error}");
        let error = Routes::new(&services(vec![Named("S", &["m", "m"])]))
            .err()
            .unwrap();
        assert!(error.contains("twice"), "{error}");
    }

    #[test]
    fn a_request_fits_its_method_by_its_stream_flags() {
        use super::{misfit, Shape};
        use crate::wire::frame::flags::{ACCEPT, METADATA, STREAM_IN, STREAM_OUT};
        use crate::wire::kind::CallKind;

        let unary = Shape::of(CallKind::Unary);
        assert_eq!(unary.misfit(0), None);
        // Other flags do not matter here.
        assert_eq!(unary.misfit(METADATA), None);
        assert_eq!(
            unary.misfit(STREAM_OUT | ACCEPT),
            Some(misfit::ANSWERS_VALUE)
        );
        assert_eq!(unary.misfit(STREAM_IN), Some(misfit::TAKES_NONE));
        let stream = Shape::of(CallKind::ServerStream);
        assert_eq!(stream.misfit(STREAM_OUT | ACCEPT), None);
        assert_eq!(stream.misfit(0), Some(misfit::ANSWERS_STREAM));
        let sending = Shape::of(CallKind::ClientStream);
        assert_eq!(sending.misfit(STREAM_IN), None);
        assert_eq!(sending.misfit(0), Some(misfit::TAKES_STREAM));
        let both = Shape::of(CallKind::BothWays);
        assert_eq!(both.misfit(STREAM_IN | STREAM_OUT), None);
        assert_eq!(both.misfit(STREAM_OUT), Some(misfit::TAKES_STREAM));
        assert_eq!(Shape::of(CallKind::OneWay).misfit(0), None);
    }
}
