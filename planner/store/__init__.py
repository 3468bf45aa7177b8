"""Stores: a GeoPackage file (embedded, opens in QGIS) or a PostGIS database (server).

Both keep the layers ``hazards`` and ``releases``, the ``imports`` records and the programme
settings behind one protocol (:class:`~planner.store.base.Store`); an import is one
transaction. The store keeps data and never computes figures (:mod:`planner.accounting` does).
"""

from planner.store.base import ImportRecord, Retraction, Store
from planner.store.copy import copy_store
from planner.store.factory import create_store, open_store
from planner.store.gpkg import GeoPackageStore

__all__ = ["GeoPackageStore", "ImportRecord", "Retraction", "Store", "copy_store",
           "create_store", "open_store"]
