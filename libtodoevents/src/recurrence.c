/* placeholder: filled in by the recurrence module work */
