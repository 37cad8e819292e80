"""Scale-out on Dask: the task runner a flow gets when a cluster is configured, and what a task
running on it uses to spread its own work (feature parts by county, LightGBM's training).

``FENGQIAO_DASK_ADDRESS`` names a running scheduler (``tcp://host:8786``); ``--dask`` on the
CLI starts a local cluster of ``FENGQIAO_N_JOBS`` single-threaded worker processes instead.
Workers read and write the data root, so on a real cluster it must be shared storage mounted
at the same path everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from distributed import Client
from prefect.context import FlowRunContext
from prefect_dask import DaskTaskRunner

from features.engine.partition import Mapper
from fengqiao.settings import Settings


def task_runner(settings: Settings, local: bool = False) -> DaskTaskRunner | None:
    """The flow's task runner: a local cluster with ``local``, the configured scheduler, or None
    (no cluster: Prefect's default runner, everything in this process)."""
    if local:
        return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                              cluster_kwargs={"n_workers": settings.n_jobs, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})  # fmt: skip
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return None


def on_cluster() -> bool:
    """In a flow: whether it runs on a Dask cluster (its task runner is a ``DaskTaskRunner``)."""
    context = FlowRunContext.get()
    return context is not None and isinstance(context.task_runner, DaskTaskRunner)


@contextmanager
def cluster_client(distributed: bool) -> Iterator[None]:
    """In a task that its flow calls (``distributed``: the flow is ``on_cluster``): the flow's
    Dask client is the current one within the block (``lightgbm.dask`` trains on it)."""
    if not distributed:
        yield
        return
    with Client.as_current(FlowRunContext.get().task_runner.client):
        yield


def cluster_mapper(distributed: bool) -> Mapper | None:
    """In a task that its flow calls (``distributed``: the flow is ``on_cluster``): a ``map`` that
    runs its calls on the flow's cluster through the task runner's client (inputs scattered
    once, results gathered in order); else None."""
    if not distributed:
        return None
    client = FlowRunContext.get().task_runner.client

    def mapped(fn: Callable, items: Iterable) -> list:
        return client.gather(client.map(fn, client.scatter(list(items)), pure=False))

    return mapped
