/* placeholder: filled in by the event_catalog module work */
