


myevents

