"""Your own monorepo from this one: `copier copy` / `copier update` adoption and `make new-app`."""
