"""Tables and matplotlib figures built from prepared data and run results."""
