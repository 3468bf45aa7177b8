"""For the people in the field: marking and fencing plans (:mod:`planner.field.marking`),
their files for GIS and GPS (:mod:`planner.field.exports`) and maps (:mod:`planner.field.maps`).
"""
