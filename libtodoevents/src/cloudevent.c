/* placeholder: filled in by the cloudevent module work */
