/* placeholder: filled in by the task module work */
