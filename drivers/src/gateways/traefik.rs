//! Traefik: a `forwardAuth` `Middleware` (only for flows whose hold fits Traefik's 30 s).

use super::*;

pub(super) fn traefik(target: &Target) -> String {
    format!(
        "# Rendered by `leannodes gateway render traefik`. Traefik's forwardAuth waits at most 30s (hard-coded),\n\
         # which covers these flows' hold_timeout. Attach it to the flows' routers (IngressRoute middlewares, or\n\
         # the annotation traefik.ingress.kubernetes.io/router.middlewares: {ns}-leannodes@kubernetescrd).\n\
         apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: leannodes\n  namespace: {ns}\nspec:\n  forwardAuth:\n    address: \"{check}\"\n    preserveRequestMethod: false\n    authResponseHeaders: []\n",
        ns = target.namespace,
        check = target.check_url,
    )
}
