"""What people read: the tables of the outputs, one table of Chinese headers and labels, Beijing time."""
